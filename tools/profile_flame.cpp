// The flame graph, as SVG.
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <algorithm>
#include <map>
#include <memory>

#include "profile.hpp"
#include "tool.hpp"

namespace ringpool::tool {

namespace {

struct Node {
  std::string name;
  int64_t value = 0;
  std::map<std::string, std::unique_ptr<Node>> kids;
};

// Length of the valid UTF-8 sequence at s[i], or 0.
size_t utf8_len(const std::string& s, size_t i) {
  unsigned char c = (unsigned char)s[i];
  size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; k++)
    if (((unsigned char)s[i + k] >> 6) != 2) return 0;
  return n;
}

std::string xml_escape(const std::string& s) {
  std::string r;
  for (size_t i = 0; i < s.size(); i++) {
    char c = s[i];
    if ((unsigned char)c >= 0x80) {  // keep valid UTF-8, replace the rest
      size_t n = utf8_len(s, i);
      if (n == 0) {
        r += '?';
      } else {
        r.append(s, i, n);
        i += n - 1;
      }
      continue;
    }
    switch (c) {
      case '&': r += "&amp;"; break;
      case '<': r += "&lt;"; break;
      case '>': r += "&gt;"; break;
      case '"': r += "&quot;"; break;
      case '\'': r += "&apos;"; break;
      default:
        // XML 1.0 allows no control characters other than tab/newline/CR.
        if ((unsigned char)c < 0x20 && c != '\t') r += '?';
        else r += c;
    }
  }
  return r;
}

int depth_of(const Node& n) {
  int d = 0;
  for (auto& kv : n.kids) d = std::max(d, depth_of(*kv.second));
  return d + 1;
}

struct Flame {
  FILE* out;
  double total, scale;
  int height;
  static constexpr int k_width = 1200, k_pad = 10, k_row = 17, k_top = 40;

  void draw(const Node& n, double x, int level) {
    double w = (double)n.value * scale;
    if (w < 0.3) return;
    double y = height - k_pad - (level + 1) * k_row;
    unsigned h = 2166136261u;
    for (char c : n.name) h = (h ^ (unsigned char)c) * 16777619u;
    int r = 205 + (int)(h % 50), g = 80 + (int)((h >> 8) % 150), b = (int)((h >> 16) % 60);
    double pct = total > 0 ? 100.0 * (double)n.value / total : 0;
    std::string name = xml_escape(n.name);
    fprintf(out, "<g><title>%s (%s, %.2f%%)</title>", name.c_str(), human(n.value).c_str(), pct);
    fprintf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" fill=\"rgb(%d,%d,%d)\" rx=\"2\" ry=\"2\"/>", x, y,
            w, k_row - 1, r, g, b);
    size_t fit = w > 14 ? (size_t)((w - 6) / 7) : 0;
    if (fit >= 3) {
      std::string label = n.name.size() <= fit ? n.name : n.name.substr(0, fit - 2) + "..";
      fprintf(out, "<text x=\"%.1f\" y=\"%.1f\">%s</text>", x + 3, y + k_row - 5, xml_escape(label).c_str());
    }
    fprintf(out, "</g>\n");
    std::vector<const Node*> kids;
    for (auto& kv : n.kids) kids.push_back(kv.second.get());
    std::sort(kids.begin(), kids.end(), [](const Node* a, const Node* b) {
      return a->value != b->value ? a->value > b->value : a->name < b->name;
    });
    double cx = x;
    for (const Node* k : kids) {
      draw(*k, cx, level + 1);
      cx += (double)k->value * scale;
    }
  }
};

}  // namespace

bool write_flame(const Profile& p, const std::unordered_map<uint64_t, Symbol>& syms, bool by_alloc,
                 const std::string& path, const std::string& source) {
  Node root;
  root.name = "all";
  for (const Stack& s : p.stacks) {
    int64_t v = by_alloc ? s.alloc_b : s.live_b;
    if (v <= 0) continue;
    root.value += v;
    Node* n = &root;
    for (size_t i = s.pcs.size(); i-- > 0;) {  // outermost first
      std::string name = frame_name(s.pcs[i], syms);
      auto& slot = n->kids[name];
      if (!slot) {
        slot = std::make_unique<Node>();
        slot->name = name;
      }
      n = slot.get();
      n->value += v;
    }
  }
  FILE* f = fopen(path.c_str(), "we");
  if (!f) {
    fprintf(stderr, "ringpool profile: cannot write %s: %s\n", path.c_str(), strerror(errno));
    return false;
  }
  Flame fl;
  fl.out = f;
  fl.total = (double)root.value;
  fl.scale = root.value > 0 ? (double)(Flame::k_width - 2 * Flame::k_pad) / (double)root.value : 0;
  int depth = depth_of(root);
  fl.height = Flame::k_top + depth * Flame::k_row + 2 * Flame::k_pad;
  fprintf(f, "<?xml version=\"1.0\" standalone=\"no\"?>\n");
  fprintf(f,
          "<svg version=\"1.1\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
          "xmlns=\"http://www.w3.org/2000/svg\">\n",
          Flame::k_width, fl.height, Flame::k_width, fl.height);
  fprintf(f,
          "<style>text { font-family: Verdana, sans-serif; font-size: 12px; fill: rgb(0,0,0); } "
          "g:hover rect { stroke: black; stroke-width: 0.5; }</style>\n");
  fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"rgb(250,250,240)\"/>\n", Flame::k_width, fl.height);
  std::string title = std::string("Heap flame graph: ") + (by_alloc ? "bytes allocated" : "live bytes") + ", " +
                      human(root.value) + " (" + source + ")";
  fprintf(f, "<text x=\"%d\" y=\"24\" text-anchor=\"middle\" style=\"font-size:16px\">%s</text>\n", Flame::k_width / 2,
          xml_escape(title).c_str());
  if (root.value > 0) fl.draw(root, Flame::k_pad, 0);
  fprintf(f, "</svg>\n");
  bool ok = !ferror(f);
  if (fclose(f) != 0) ok = false;
  if (!ok) fprintf(stderr, "ringpool profile: error writing %s\n", path.c_str());
  return ok;
}

}  // namespace ringpool::tool
