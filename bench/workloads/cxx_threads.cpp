// cxx_threads - a threaded C++ program: std::map, std::string, std::vector.
//
// T std::threads; each round every thread builds an index
// std::map<std::string, std::vector<uint32_t>> (keys too long for the
// small-string buffer, vectors grown by push_back), looks keys up, erases
// half, and publishes it. Next round each thread destroys the index its
// neighbour published (cross-thread frees of nodes, strings and vector
// storage) before building a new one. Tests the operator new/delete path
// and the allocation mix of ordinary C++ code.
// The checksum is deterministic: rounds are separated by a barrier.
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

const char usage[] = "[threads=4] [rounds=8] [ops=20000] [seed=1]";

using Index = std::map<std::string, std::vector<uint32_t>>;

struct Rng {
    uint64_t s;
    uint64_t next()
    {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        return s * 0x2545F4914F6CDD1DULL;
    }
    uint32_t below(uint32_t n) { return uint32_t(((next() >> 32) * n) >> 32); }
};

class Barrier {
public:
    explicit Barrier(unsigned n) : n_(n) {}
    void wait()
    {
        std::unique_lock<std::mutex> lock(m_);
        unsigned gen = gen_;
        if (++count_ == n_) {
            count_ = 0;
            gen_++;
            cv_.notify_all();
        } else {
            cv_.wait(lock, [&] { return gen != gen_; });
        }
    }

private:
    std::mutex m_;
    std::condition_variable cv_;
    unsigned n_, count_ = 0, gen_ = 0;
};

long arg(int argc, char **argv, int i, long def)
{
    if (i >= argc)
        return def;
    char *end;
    long v = std::strtol(argv[i], &end, 10);
    if (end == argv[i] || *end || v < 0) {
        std::fprintf(stderr, "usage: %s %s\n", argv[0], usage);
        std::exit(64);
    }
    return v;
}

uint64_t build(Index &idx, Rng &rng, long ops)
{
    uint64_t sum = 0;
    char key[48];
    for (long i = 0; i < ops; i++) {
        std::snprintf(key, sizeof key, "session:%08x:user:%04x",
                      rng.below(1u << 20), rng.below(4096));
        std::vector<uint32_t> &v = idx[key];
        uint32_t n = rng.below(24);
        for (uint32_t k = 0; k < n; k++)
            v.push_back(uint32_t(i) + k);
        std::snprintf(key, sizeof key, "session:%08x:user:%04x",
                      rng.below(1u << 20), rng.below(4096));
        auto it = idx.find(key);
        if (it != idx.end())
            sum += it->second.size() + 1;
    }
    bool drop = false;
    for (auto it = idx.begin(); it != idx.end();) {
        if ((drop = !drop)) {
            it = idx.erase(it);
        } else {
            sum = sum * 31 + it->first.size() + it->second.size();
            ++it;
        }
    }
    return sum;
}

} // namespace

int main(int argc, char **argv)
{
    if (argc > 5 || (argc > 1 && !std::strcmp(argv[1], "-h"))) {
        std::fprintf(stderr, "usage: %s %s\n", argv[0], usage);
        return argc > 5 ? 64 : 0;
    }
    long threads = arg(argc, argv, 1, 4);
    long rounds = arg(argc, argv, 2, 8);
    long ops = arg(argc, argv, 3, 20000);
    uint64_t seed = uint64_t(arg(argc, argv, 4, 1));
    if (threads < 1)
        threads = 1;

    std::vector<std::unique_ptr<Index>> published(static_cast<size_t>(threads));
    std::vector<uint64_t> sums(static_cast<size_t>(threads));
    Barrier barrier(static_cast<unsigned>(threads));
    std::vector<std::thread> pool;
    for (long t = 0; t < threads; t++) {
        pool.emplace_back([&, t] {
            Rng rng{seed * 0x9E3779B97F4A7C15ULL + uint64_t(t) + 1};
            uint64_t sum = 0;
            for (long r = 0; r < rounds; r++) {
                // Destroy what the neighbour built last round.
                published[size_t((t + 1) % threads)].reset();
                barrier.wait();
                auto idx = std::make_unique<Index>();
                sum = sum * 31 + build(*idx, rng, ops);
                published[size_t(t)] = std::move(idx);
                barrier.wait();
            }
            sums[size_t(t)] = sum;
        });
    }
    for (auto &th : pool)
        th.join();
    uint64_t sum = 0;
    for (uint64_t s : sums)
        sum = sum * 31 + s;
    std::printf("checksum=%016llx\n", (unsigned long long)sum);
    return 0;
}
