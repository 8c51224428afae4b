// Unit tests of the named counters (pool/stats.hpp): counters another layer
// registers at start-up, counts per thread, and reads back, with their
// names, through the snapshot that `ringpool stat` computes too.
#include <string.h>

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <thread>

#include "../../pool/pool.hpp"

namespace pool = ringpool::pool;

namespace {

const pool::NamedCount* find(const pool::Snapshot& s, const char* name) {
  for (uint32_t k = 0; k < s.named_used; k++)
    if (strcmp(s.named[k].name.name, name) == 0) return &s.named[k];
  return nullptr;
}

std::string text_of(const pool::Snapshot& s, bool json) {
  char buf[1 << 16];
  if (json) pool::format_json(s, buf, sizeof buf);
  else pool::format_text(s, false, buf, sizeof buf);
  return buf;
}

// A region of one slot, valid as the process writes it.
std::unique_ptr<pool::SharedStats> fake_region() {
  auto s = std::make_unique<pool::SharedStats>();
  memcpy(s->magic, pool::k_stats_magic, sizeof s->magic);
  s->layout = pool::k_stats_layout;
  s->header_size = sizeof(pool::SharedStats);
  s->num_classes = pool::k_num_classes;
  s->slots = 1;
  s->slots_used = 1;
  return s;
}

}  // namespace

TEST_CASE("named counters counted by two threads read back through the snapshot with their names",
          "[pool][stats][named]") {
  pool::init();
  static const pool::CounterSpec specs[] = {
      {"test_events", "events", "events the test counted", pool::CounterKind::counter},
      {"test_level", "level", "a level the test moved up and down", pool::CounterKind::gauge},
  };
  unsigned first = pool::k_named_counters;
  REQUIRE(pool::counters_register("counted", specs, 2, &first));
  REQUIRE(first + 1 < pool::k_named_counters);

  // One thread with a heap (a slot of its own), one without (the header's
  // atomic counts).
  bool had_slot = false, had_none = true;
  std::thread with_heap([&] {
    pool::free(pool::alloc(64));
    had_slot = pool::thread_counters() != nullptr;
    for (int i = 0; i < 1000; i++) pool::counter_add(first);
    pool::counter_add(first + 1, 5);
  });
  std::thread without_heap([&] {
    had_none = pool::thread_counters() == nullptr;
    for (int i = 0; i < 500; i++) pool::counter_add(first);
    pool::counter_add(first + 1, (uint64_t)-2);
  });
  with_heap.join();
  without_heap.join();
  CHECK(had_slot);
  CHECK(had_none);

  pool::Snapshot s;
  pool::snapshot_now(&s);
  const pool::NamedCount* events = find(s, "test_events");
  const pool::NamedCount* level = find(s, "test_level");
  REQUIRE(events != nullptr);
  REQUIRE(level != nullptr);
  CHECK(events - s.named == first);
  CHECK(events->value == 1500);
  CHECK(level->value == 3);
  CHECK(std::string(events->name.group) == "counted");
  CHECK(std::string(events->name.label) == "events");
  CHECK(std::string(level->name.help) == "a level the test moved up and down");
  CHECK(events->name.kind == (uint32_t)pool::CounterKind::counter);
  CHECK(level->name.kind == (uint32_t)pool::CounterKind::gauge);

  uint64_t read[2] = {};
  pool::counters_read(first, 2, read);
  CHECK(read[0] == 1500);
  CHECK(read[1] == 3);

  CHECK(text_of(s, false).find("\n  counted:   1500 events, 3 level\n") != std::string::npos);
  CHECK(text_of(s, true).find("\"test_events\":1500,\"test_level\":3") != std::string::npos);
}

TEST_CASE("a registration with a taken or malformed name is refused whole", "[pool][stats][named]") {
  pool::init();
  pool::Snapshot before;
  pool::snapshot_now(&before);
  auto refused = [](pool::CounterSpec spec) {
    unsigned first = 12345;
    pool::CounterSpec specs[] = {{"test_fine_before", "fine", "a good counter before the bad one", pool::CounterKind::counter},
                                 spec};
    return !pool::counters_register("refused", specs, 2, &first) && first == 12345;
  };
  CHECK(refused({"segments_mapped", "x", "a global counter's name", pool::CounterKind::counter}));
  CHECK(refused({"Test_upper", "x", "not lowercase", pool::CounterKind::counter}));
  CHECK(refused({"test-dash", "x", "not an identifier", pool::CounterKind::counter}));
  CHECK(refused({"", "x", "empty", pool::CounterKind::counter}));
  CHECK(refused({"test_quote", "say \"x\"", "a quote in the label", pool::CounterKind::counter}));
  CHECK(refused({"test_a_name_that_is_far_too_long_to_fit", "x", "longer than the field", pool::CounterKind::counter}));
  CHECK(refused({"test_fine_before", "x", "the same name twice", pool::CounterKind::counter}));
  unsigned first;
  pool::CounterSpec once = {"test_once", "once", "registered once", pool::CounterKind::counter};
  REQUIRE(pool::counters_register("refused", &once, 1, &first));
  CHECK(!pool::counters_register("refused", &once, 1, &first));

  pool::Snapshot after;
  pool::snapshot_now(&after);
  CHECK(after.named_used == before.named_used + 1);
  CHECK(find(after, "test_fine_before") == nullptr);
  // An id past the table counts nothing, and harms nothing.
  pool::counter_add(pool::k_named_counters);
  pool::counter_add(~0u);
}

TEST_CASE("a region's counter names are checked before anything prints them", "[pool][stats][named]") {
  auto s = fake_region();
  s->named_used = 1000;  // more than fit: the reader takes k_named_counters
  strcpy(s->names[0].name, "good_one");
  strcpy(s->names[0].group, "grp");
  strcpy(s->names[0].label, "ok \"quoted\" \\ \x01");
  memset(s->names[1].name, 'a', sizeof s->names[1].name);  // no NUL
  strcpy(s->names[2].name, "bad name");
  strcpy(s->names[2].label, "hidden");
  s->names[3].kind = 77;
  strcpy(s->names[3].name, "odd_kind");
  s->named_global[0] = 4;
  s->heaps[0].named[0] = 3;
  s->named_global[2] = 9;
  pool::Snapshot snap;
  REQUIRE(pool::snapshot_from(s.get(), pool::shared_stats_bytes(1), 0, &snap));
  CHECK(snap.named_used == pool::k_named_counters);
  CHECK(std::string(snap.named[0].name.name) == "good_one");
  CHECK(std::string(snap.named[0].name.label) == "ok ?quoted? ? ?");
  CHECK(snap.named[0].value == 7);
  CHECK(snap.named[1].name.name[0] == 0);
  CHECK(snap.named[2].name.name[0] == 0);
  CHECK(snap.named[3].name.kind == (uint32_t)pool::CounterKind::counter);
  std::string text = text_of(snap, false), json = text_of(snap, true);
  CHECK(text.find("  grp:       7 ok ?quoted? ? ?\n") != std::string::npos);
  CHECK(text.find("hidden") == std::string::npos);
  CHECK(json.find("\"good_one\":7") != std::string::npos);
  CHECK(json.find("bad") == std::string::npos);
}
