// threaded_cxx: the C++ side of the allocator, as a program sees it.
//
// Containers churned in several threads, every form of operator new and
// delete (plain, array, nothrow, sized, over-aligned with align_val_t), and
// objects made in one thread and destroyed in another.  The output is a
// function of the code only, so it must match with and without LD_PRELOAD.
//
// Glossary
//   churn    a worker filling and emptying std containers with derived data.
//   parcel   an object (or raw block) built by a producer thread, sent
//            through a queue and checked and deleted by a consumer thread.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "testutil.h"

namespace {

uint64_t fnv(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = static_cast<const unsigned char *>(data);
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001B3ULL;
    return h;
}

uint64_t fnv(uint64_t h, uint64_t v) { return fnv(h, &v, sizeof v); }

uint64_t churn(unsigned id)
{
    uint64_t h = 0xCBF29CE484222325ULL;
    rng_t r = rng_seed(1000 + id);
    for (int round = 0; round < 20; round++) {
        std::map<int, std::string> ordered;
        std::unordered_map<std::string, int> hashed;
        std::vector<std::string> words;
        for (int i = 0; i < 2000; i++) {
            size_t len = rng_range(&r, 0, 100);
            std::string s(len, static_cast<char>('a' + (i + round) % 26));
            s += std::to_string(i * 7919 + static_cast<int>(id));
            ordered[static_cast<int>(rng_next(&r) % 5000)] = s;
            hashed[s] += i;
            words.push_back(std::move(s));
        }
        std::sort(words.begin(), words.end());
        for (auto &kv : ordered) {
            h = fnv(h, static_cast<uint64_t>(kv.first));
            h = fnv(h, kv.second.data(), kv.second.size());
        }
        uint64_t sum = 0;
        for (auto &kv : hashed)
            sum += static_cast<uint64_t>(kv.second) * kv.first.size();
        h = fnv(h, sum);
        for (size_t i = 0; i < words.size(); i += 97)
            h = fnv(h, words[i].data(), words[i].size());
        // drop half of everything, grow again: vector reallocation, node reuse
        words.erase(words.begin(), words.begin() + static_cast<long>(words.size() / 2));
        words.shrink_to_fit();
        for (auto it = ordered.begin(); it != ordered.end();)
            it = (it->first % 2) ? ordered.erase(it) : std::next(it);
        h = fnv(h, ordered.size());
        h = fnv(h, words.size());
    }
    return h;
}

struct alignas(64) Line {
    uint64_t v[8];
};

struct alignas(256) Wide {
    uint64_t v[40];
};

struct Node {
    uint64_t key;
    std::string text;
    std::vector<int> list;
};

// One parcel kind per operator new / delete form.
enum class Kind { node, line, wide_array, raw, raw_aligned, nothrow, nothrow_aligned, string, count };

struct Parcel {
    Kind kind;
    void *p;
    size_t n;   // bytes or elements, whichever the kind needs
    uint64_t seq;
};

std::mutex q_lock;
std::condition_variable q_cv;
std::deque<Parcel> queue;
bool done = false;

bool aligned(const void *p, size_t a) { return (reinterpret_cast<uintptr_t>(p) & (a - 1)) == 0; }

void fill(void *p, size_t n, uint64_t seq)
{
    auto *b = static_cast<unsigned char *>(p);
    for (size_t i = 0; i < n; i++)
        b[i] = static_cast<unsigned char>(seq * 131 + i);
}

void check(const void *p, size_t n, uint64_t seq, const char *what)
{
    auto *b = static_cast<const unsigned char *>(p);
    for (size_t i = 0; i < n; i++)
        if (b[i] != static_cast<unsigned char>(seq * 131 + i))
            fail("%s parcel %llu corrupt at byte %zu", what, static_cast<unsigned long long>(seq), i);
}

Parcel make(uint64_t seq, rng_t *r)
{
    Kind kind = static_cast<Kind>(seq % static_cast<uint64_t>(Kind::count));
    size_t n = rng_range(r, 1, 5000);
    void *p = nullptr;
    switch (kind) {
    case Kind::node: {
        auto *x = new Node{seq, std::string(n % 300, 'x'), std::vector<int>(n % 50, static_cast<int>(seq))};
        p = x;
        break;
    }
    case Kind::line: {
        auto *x = new Line;
        if (!aligned(x, 64))
            fail("new Line not 64-byte aligned: %p", static_cast<void *>(x));
        for (auto &v : x->v) v = seq;
        p = x;
        break;
    }
    case Kind::wide_array: {
        n = n % 7 + 1;
        auto *x = new Wide[n];
        if (!aligned(x, 256))
            fail("new Wide[%zu] not 256-byte aligned: %p", n, static_cast<void *>(x));
        for (size_t i = 0; i < n; i++) x[i].v[0] = seq + i;
        p = x;
        break;
    }
    case Kind::raw:
        p = ::operator new(n);
        fill(p, n, seq);
        break;
    case Kind::raw_aligned:
        p = ::operator new(n, std::align_val_t(64));
        if (!aligned(p, 64))
            fail("operator new(%zu, align_val_t(64)) not aligned: %p", n, p);
        fill(p, n, seq);
        break;
    case Kind::nothrow:
        p = new (std::nothrow) char[n];
        if (!p)
            fail("new (nothrow) char[%zu] returned nullptr", n);
        fill(p, n, seq);
        break;
    case Kind::nothrow_aligned:
        p = ::operator new(n, std::align_val_t(4096), std::nothrow);
        if (!p || !aligned(p, 4096))
            fail("operator new(%zu, align_val_t(4096), nothrow) gave %p", n, p);
        fill(p, n, seq);
        break;
    case Kind::string:
        p = new std::string(n, static_cast<char>('A' + seq % 26));
        break;
    case Kind::count:
        break;
    }
    return Parcel{kind, p, n, seq};
}

uint64_t consume(const Parcel &c)
{
    uint64_t h = c.seq;
    switch (c.kind) {
    case Kind::node: {
        auto *x = static_cast<Node *>(c.p);
        if (x->key != c.seq || x->text.size() != c.n % 300 || x->list.size() != c.n % 50)
            fail("node parcel %llu corrupt", static_cast<unsigned long long>(c.seq));
        h += x->text.size() + x->list.size();
        delete x;   // sized delete: Node is complete here
        break;
    }
    case Kind::line: {
        auto *x = static_cast<Line *>(c.p);
        for (auto v : x->v)
            if (v != c.seq) fail("line parcel corrupt");
        delete x;   // aligned sized delete
        break;
    }
    case Kind::wide_array: {
        auto *x = static_cast<Wide *>(c.p);
        for (size_t i = 0; i < c.n; i++)
            if (x[i].v[0] != c.seq + i) fail("wide parcel corrupt");
        delete[] x;
        break;
    }
    case Kind::raw:
        check(c.p, c.n, c.seq, "raw");
        if (c.seq % 2)
            ::operator delete(c.p, c.n);   // sized
        else
            ::operator delete(c.p);
        break;
    case Kind::raw_aligned:
        check(c.p, c.n, c.seq, "aligned");
        if (c.seq % 2)
            ::operator delete(c.p, c.n, std::align_val_t(64));
        else
            ::operator delete(c.p, std::align_val_t(64));
        break;
    case Kind::nothrow:
        check(c.p, c.n, c.seq, "nothrow");
        delete[] static_cast<char *>(c.p);
        break;
    case Kind::nothrow_aligned:
        check(c.p, c.n, c.seq, "nothrow aligned");
        ::operator delete(c.p, std::align_val_t(4096), std::nothrow);
        break;
    case Kind::string: {
        auto *s = static_cast<std::string *>(c.p);
        if (s->size() != c.n || (*s)[0] != static_cast<char>('A' + c.seq % 26))
            fail("string parcel corrupt");
        h += s->size();
        delete s;
        break;
    }
    case Kind::count:
        break;
    }
    return h;
}

// Producers build parcels, consumers delete them: every delete is remote.
uint64_t hand_over(unsigned producers, unsigned consumers, uint64_t per_producer)
{
    std::atomic<uint64_t> total{0};
    std::vector<std::thread> cons, prods;
    for (unsigned i = 0; i < consumers; i++)
        cons.emplace_back([&total] {
            uint64_t sum = 0;
            for (;;) {
                std::unique_lock<std::mutex> g(q_lock);
                q_cv.wait(g, [] { return done || !queue.empty(); });
                if (queue.empty())
                    break;
                Parcel c = queue.front();
                queue.pop_front();
                g.unlock();
                sum += consume(c);
            }
            total += sum;
        });
    for (unsigned i = 0; i < producers; i++)
        prods.emplace_back([i, per_producer] {
            rng_t r = rng_seed(77 + i);
            for (uint64_t k = 0; k < per_producer; k++) {
                Parcel c = make(i * per_producer + k, &r);
                {
                    std::lock_guard<std::mutex> g(q_lock);
                    queue.push_back(c);
                }
                q_cv.notify_one();
            }
        });
    for (auto &t : prods) t.join();
    {
        std::lock_guard<std::mutex> g(q_lock);
        done = true;
    }
    q_cv.notify_all();
    for (auto &t : cons) t.join();
    return total.load();
}

// Objects built by threads that exit before the objects are destroyed.
uint64_t outlive_threads()
{
    std::vector<std::unique_ptr<std::vector<std::string>>> kept(8);
    std::vector<std::thread> ts;
    for (unsigned i = 0; i < kept.size(); i++)
        ts.emplace_back([&kept, i] {
            auto v = std::make_unique<std::vector<std::string>>();
            for (unsigned k = 0; k < 1000 + i; k++)
                v->push_back(std::string(k % 40 + 20, static_cast<char>('a' + k % 26)));
            kept[i] = std::move(v);
        });
    for (auto &t : ts) t.join();
    uint64_t n = 0;
    for (auto &v : kept)
        for (auto &s : *v) n += s.size();
    kept.clear();   // freed here, after their threads are gone
    return n;
}

int bad_alloc_is_thrown()
{
#if defined(__cpp_exceptions)
    // Far beyond any address space: operator new must throw, not crash or
    // return null, and the nothrow forms must return null.
    volatile size_t huge = static_cast<size_t>(PTRDIFF_MAX) - 4096;
    try {
        void *p = ::operator new(huge);
        fail("operator new(%zu) returned %p instead of throwing", static_cast<size_t>(huge), p);
    } catch (const std::bad_alloc &) {
    }
    try {
        void *p = ::operator new(huge, std::align_val_t(64));
        fail("operator new(%zu, align 64) returned %p instead of throwing", static_cast<size_t>(huge), p);
    } catch (const std::bad_alloc &) {
    }
#endif
    volatile size_t huge2 = static_cast<size_t>(PTRDIFF_MAX) - 4096;
    if (::operator new(huge2, std::nothrow) != nullptr)
        fail("operator new(huge, nothrow) did not return nullptr");
    if (::operator new(huge2, std::align_val_t(64), std::nothrow) != nullptr)
        fail("operator new(huge, align 64, nothrow) did not return nullptr");
    return 1;
}

}   // namespace

int main()
{
    test_name = "threaded_cxx";

    std::vector<uint64_t> results(4);
    {
        std::vector<std::thread> ts;
        for (unsigned i = 0; i < results.size(); i++)
            ts.emplace_back([&results, i] { results[i] = churn(i); });
        for (auto &t : ts) t.join();
    }
    for (unsigned i = 0; i < results.size(); i++)
        std::printf("churn %u: %016llx\n", i, static_cast<unsigned long long>(results[i]));

    std::printf("hand over: %llu\n", static_cast<unsigned long long>(hand_over(3, 2, 20000)));
    std::printf("outlive threads: %llu\n", static_cast<unsigned long long>(outlive_threads()));
    std::printf("bad_alloc: %s\n", bad_alloc_is_thrown() ? "ok" : "no");
    std::printf("threaded_cxx: ok\n");
    return 0;
}
