// The audit verify walk's fast path (main/audit/verify-walk.ts): accepts a run of rows that the
// TypeScript walk would accept, and stops at the first row it is not sure of. It never rejects: the
// row it stops at is walked by the TypeScript code, which accepts it or names what is wrong with it,
// so the answer of a verify is the TypeScript walk's answer with or without this function.
//
// A row is [seq, body, leaf and nodes as lowercase hex, the index columns as typed text] (the SELECT
// of verify-walk.ts). It is accepted when: seq is the one expected and below the limit (the rows at a
// saved head or an issued checkpoint are the TypeScript walk's); the body is a canonical entry in the
// plain form (no backslash, so no escape, and no control character or lone surrogate) whose prev is the
// leaf before it, spelled exactly as canonicalEntryText spells it (the same scan as scanCanonicalBody;
// a number that scan checks with JSON.stringify stops this one); SHA-256(0x00 || UTF-8 body) is the
// stored leaf; the index text is the body's fields typed and joined by U+001F; the Merkle nodes the
// leaf completes are the stored nodes. SHA-256 is OpenSSL's, which Node links in and exports: the
// SHA256_Init/Update/Final functions, deprecated in OpenSSL 3 but direct; its one-shot SHA256() looks the
// algorithm up by name on every call (measured: most of this walk's time).

#include "audit_walk.h"

// Before any OpenSSL header: the low-level digest functions are deprecated, not removed.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>
#include <string.h>

#include <cstdint>
#include <string>
#include <vector>

namespace {

constexpr size_t kHash = 32;
constexpr int kMaxLevels = 64;
constexpr char16_t kUnitSeparator = 0x1f;
constexpr double kMaxSafeInteger = 9007199254740991.0;

struct Span {
  size_t begin = 0;
  size_t end = 0;  // exclusive
  bool null = false;
};

struct Fields {
  Span uid;
  Span kind;
  Span plugin;
  Span summary;
  Span time;
  double seq = -1;
};

class Scanner {
 public:
  Scanner(const char16_t* b, size_t n) : b_(b), n_(n) {}

  // lit(): the text at p, then p moves past it.
  bool Lit(size_t& p, const char* text) const {
    const size_t k = strlen(text);
    if (p + k > n_) return false;
    for (size_t i = 0; i < k; i++) {
      if (b_[p + i] != static_cast<unsigned char>(text[i])) return false;
    }
    p += k;
    return true;
  }

  bool StartsWith(size_t p, const char* text) const {
    size_t q = p;
    return Lit(q, text);
  }

  // The closing quote of the string opening at p (a plain body has no backslash), or npos.
  size_t StringEnd(size_t p) const {
    if (p >= n_ || b_[p] != u'"') return std::string::npos;
    for (size_t q = p + 1; q < n_; q++) {
      if (b_[q] == u'"') return q;
    }
    return std::string::npos;
  }

  // End of a canonical integer (-?(0|[1-9][0-9]*), at most 16 digits) at p, or npos.
  size_t IntegerEnd(size_t p) const {
    size_t i = p < n_ && b_[p] == u'-' ? p + 1 : p;
    if (i >= n_) return std::string::npos;
    if (b_[i] == u'0') return i == p ? i + 1 : std::string::npos;
    if (b_[i] < u'1' || b_[i] > u'9') return std::string::npos;
    const size_t digits = i;
    for (i += 1; i < n_ && IsDigit(b_[i]); i++) {
    }
    return i - digits > 16 ? std::string::npos : i;
  }

  // numberEnd's fast path: a plain decimal that is its own shortest round-trip spelling; npos for
  // anything numberEnd would hand to JSON.stringify (this walk then stops).
  size_t NumberEnd(size_t p) const {
    size_t i = p < n_ && b_[p] == u'-' ? p + 1 : p;
    const size_t int_start = i;
    if (i >= n_) return std::string::npos;
    const char16_t first = b_[i];
    if (first == u'0') {
      i += 1;
    } else if (first >= u'1' && first <= u'9') {
      for (i += 1; i < n_ && IsDigit(b_[i]); i++) {
      }
    } else {
      return std::string::npos;
    }
    const size_t int_digits = i - int_start;
    size_t significant = first == u'0' ? 0 : int_digits;
    if (i < n_ && b_[i] == u'.') {
      const size_t frac_start = i + 1;
      for (i = frac_start; i < n_ && IsDigit(b_[i]); i++) {
      }
      if (i == frac_start || b_[i - 1] == u'0') return std::string::npos;
      if (significant == 0) {
        size_t z = frac_start;
        while (z < n_ && b_[z] == u'0') z += 1;
        if (z - frac_start > 5) return std::string::npos;
        significant = i - z;
      } else {
        significant += i - frac_start;
      }
    }
    if (i < n_) {
      const char16_t next = b_[i];
      if (next == u'e' || next == u'E' || next == u'+' || next == u'-' || next == u'.') return std::string::npos;
    }
    if (significant > 15 || int_digits > 15 || (significant == 0 && int_start != p)) return std::string::npos;
    return i;
  }

  // The integer spelled at [p, e) (at most 16 digits); false when it is not a safe integer.
  bool SafeInteger(size_t p, size_t e, double& out) const {
    bool negative = b_[p] == u'-';
    double v = 0;
    for (size_t i = negative ? p + 1 : p; i < e; i++) v = v * 10 + (b_[i] - u'0');
    if (v > kMaxSafeInteger) return false;
    out = negative ? -v : v;
    return true;
  }

  bool LowerHexAt(size_t p, size_t count) const {
    if (p + count > n_) return false;
    for (size_t i = p; i < p + count; i++) {
      if (!IsLowerHex(b_[i])) return false;
    }
    return true;
  }

  const char16_t* data() const { return b_; }
  size_t size() const { return n_; }

  static bool IsDigit(char16_t c) { return c >= u'0' && c <= u'9'; }
  static bool IsLowerHex(char16_t c) { return IsDigit(c) || (c >= u'a' && c <= u'f'); }

 private:
  const char16_t* b_;
  size_t n_;
};

// Strictly ascending in UTF-16 code unit order (JCS's key order, and JavaScript's `<` on strings).
void Sha256(const uint8_t* data, size_t n, uint8_t* out) {
  SHA256_CTX ctx;
  SHA256_Init(&ctx);
  SHA256_Update(&ctx, data, n);
  SHA256_Final(out, &ctx);
}

bool SpanLess(const char16_t* b, const Span& a, const Span& c) {
  const size_t la = a.end - a.begin;
  const size_t lc = c.end - c.begin;
  for (size_t i = 0; i < la && i < lc; i++) {
    if (b[a.begin + i] != b[c.begin + i]) return b[a.begin + i] < b[c.begin + i];
  }
  return la < lc;
}

bool HexMatches(const char16_t* hex, const uint8_t* bytes, size_t count) {
  static const char kDigits[] = "0123456789abcdef";
  for (size_t i = 0; i < count; i++) {
    if (hex[2 * i] != kDigits[bytes[i] >> 4] || hex[2 * i + 1] != kDigits[bytes[i] & 15]) return false;
  }
  return true;
}

// scanCanonicalBody for a plain body: the fields, or false when unsure (the TypeScript walk decides).
bool ScanBody(const Scanner& s, const uint8_t* prev, const std::vector<std::u16string>& kinds, Fields& f) {
  const char16_t* b = s.data();
  size_t p = 0;
  size_t e;
  if (!s.Lit(p, "{\"actor\":{")) return false;
  if (s.StartsWith(p, "\"action\":")) {
    p += 9;
    if ((e = s.StringEnd(p)) == std::string::npos) return false;
    p = e + 1;
    if (!s.Lit(p, ",")) return false;
  }
  if (!s.Lit(p, "\"subject\":")) return false;
  if ((e = s.StringEnd(p)) == std::string::npos) return false;
  p = e + 1;
  if (!s.Lit(p, ",\"uid\":")) return false;
  if (s.StartsWith(p, "null")) {
    f.uid.null = true;
    p += 4;
  } else {
    if ((e = s.IntegerEnd(p)) == std::string::npos) return false;
    double uid;
    if (!s.SafeInteger(p, e, uid)) return false;
    f.uid = {p, e, false};
    p = e;
  }
  if (!s.Lit(p, "},\"durations\":")) return false;
  if (s.StartsWith(p, "null")) {
    p += 4;
  } else {
    if (!s.Lit(p, "{")) return false;
    if (p < s.size() && b[p] == u'}') {
      p += 1;
    } else {
      Span prev_key;
      bool first = true;
      for (;;) {
        if ((e = s.StringEnd(p)) == std::string::npos) return false;
        const Span key{p + 1, e, false};
        if (!first && !SpanLess(b, prev_key, key)) return false;
        prev_key = key;
        first = false;
        p = e + 1;
        if (!s.Lit(p, ":")) return false;
        if ((e = s.NumberEnd(p)) == std::string::npos) return false;
        p = e;
        if (p >= s.size()) return false;
        const char16_t c = b[p];
        p += 1;
        if (c == u'}') break;
        if (c != u',') return false;
      }
    }
  }
  if (!s.Lit(p, ",\"kind\":")) return false;
  if ((e = s.StringEnd(p)) == std::string::npos) return false;
  f.kind = {p + 1, e, false};
  bool known = false;
  for (const std::u16string& k : kinds) {
    if (k.size() == e - p - 1 && memcmp(k.data(), b + p + 1, k.size() * sizeof(char16_t)) == 0) {
      known = true;
      break;
    }
  }
  if (!known) return false;
  p = e + 1;
  if (!s.Lit(p, ",\"payload_hash\":")) return false;
  if (s.StartsWith(p, "null")) {
    p += 4;
  } else {
    e = s.StringEnd(p);
    if (e != p + 65 || !s.LowerHexAt(p + 1, 64)) return false;
    p = e + 1;
  }
  if (!s.Lit(p, ",\"plugin\":")) return false;
  if (s.StartsWith(p, "null")) {
    f.plugin.null = true;
    p += 4;
  } else {
    if ((e = s.StringEnd(p)) == std::string::npos) return false;
    f.plugin = {p + 1, e, false};
    p = e + 1;
  }
  if (!s.Lit(p, ",\"prev\":\"")) return false;
  if (p + 65 > s.size() || !HexMatches(b + p, prev, kHash) || b[p + 64] != u'"') return false;
  p += 65;
  if (!s.Lit(p, ",\"seq\":")) return false;
  if ((e = s.IntegerEnd(p)) == std::string::npos) return false;
  if (!s.SafeInteger(p, e, f.seq) || f.seq < 0) return false;
  p = e;
  if (!s.Lit(p, ",\"summary\":")) return false;
  if ((e = s.StringEnd(p)) == std::string::npos) return false;
  f.summary = {p + 1, e, false};
  p = e + 1;
  if (!s.Lit(p, ",\"time\":")) return false;
  if ((e = s.StringEnd(p)) == std::string::npos) return false;
  f.time = {p + 1, e, false};
  return e + 2 == s.size() && b[e + 1] == u'}';
}

// The body's index text as verify-walk.ts's INDEX_TEXT spells the columns.
void IndexKey(const char16_t* b, const Fields& f, std::u16string& out) {
  out.clear();
  auto text = [&](const Span& sp) {
    out.push_back(u't');
    out.append(b + sp.begin, sp.end - sp.begin);
  };
  text(f.time);
  out.push_back(kUnitSeparator);
  text(f.kind);
  out.push_back(kUnitSeparator);
  if (f.plugin.null) {
    out.push_back(u'n');
  } else {
    text(f.plugin);
  }
  out.push_back(kUnitSeparator);
  if (f.uid.null) {
    out.push_back(u'n');
  } else {
    out.push_back(u'i');
    out.append(b + f.uid.begin, f.uid.end - f.uid.begin);
  }
  out.push_back(kUnitSeparator);
  text(f.summary);
}

// A string's UTF-16 in a buffer kept between rows (resizing a std::u16string would fill it every time).
struct Text {
  std::vector<char16_t> buffer = std::vector<char16_t>(4096);
  size_t length = 0;
  const char16_t* data() const { return buffer.data(); }
};

// Reads `v` into `out`: one call while it fits the buffer (then asks the length and reads again).
bool ReadUtf16(napi_env env, napi_value v, Text& out) {
  size_t got = 0;
  if (napi_get_value_string_utf16(env, v, out.buffer.data(), out.buffer.size(), &got) != napi_ok) return false;
  if (got + 1 >= out.buffer.size()) {
    size_t len = 0;
    if (napi_get_value_string_utf16(env, v, nullptr, 0, &len) != napi_ok) return false;
    out.buffer.resize(len + 1);
    if (napi_get_value_string_utf16(env, v, out.buffer.data(), len + 1, &got) != napi_ok || got != len) return false;
  }
  out.length = got;
  return true;
}

// Per-thread scratch (each worker thread has its own).
struct Scratch {
  Text body;
  Text index;
  Text hex;
  std::u16string key;
  std::vector<uint8_t> utf8;
  size_t utf8_length = 0;
};

// UTF-8 of a plain body behind a 0x00 byte; false for a backslash, a control character or a lone surrogate.
// Writes through a plain pointer: a loop over a (thread_local) vector's push_back looked the vector up on
// every character.
bool PlainUtf8(const Text& body, std::vector<uint8_t>& buffer, size_t& length) {
  const size_t n = body.length;
  if (buffer.size() < n * 3 + 1) buffer.resize(n * 3 + 1);
  uint8_t* out = buffer.data();
  const char16_t* in = body.data();
  size_t o = 0;
  out[o++] = 0;
  for (size_t i = 0; i < n; i++) {
    const char16_t c = in[i];
    if (c < 0x80) {
      if (c < 0x20 || c == u'\\') return false;
      out[o++] = static_cast<uint8_t>(c);
    } else if (c < 0x800) {
      out[o++] = static_cast<uint8_t>(0xc0 | (c >> 6));
      out[o++] = static_cast<uint8_t>(0x80 | (c & 0x3f));
    } else if (c >= 0xd800 && c <= 0xdbff) {
      if (i + 1 >= n || in[i + 1] < 0xdc00 || in[i + 1] > 0xdfff) return false;
      const uint32_t cp = 0x10000 + ((static_cast<uint32_t>(c) - 0xd800) << 10) + (in[i + 1] - 0xdc00);
      out[o++] = static_cast<uint8_t>(0xf0 | (cp >> 18));
      out[o++] = static_cast<uint8_t>(0x80 | ((cp >> 12) & 0x3f));
      out[o++] = static_cast<uint8_t>(0x80 | ((cp >> 6) & 0x3f));
      out[o++] = static_cast<uint8_t>(0x80 | (cp & 0x3f));
      i += 1;
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      return false;
    } else {
      out[o++] = static_cast<uint8_t>(0xe0 | (c >> 12));
      out[o++] = static_cast<uint8_t>(0x80 | ((c >> 6) & 0x3f));
      out[o++] = static_cast<uint8_t>(0x80 | (c & 0x3f));
    }
  }
  length = o;
  return true;
}

// Whether the row at `row` passes every check; on success the walk state moves past it.
bool AcceptRow(napi_env env, napi_value row, double expected, double limit, uint8_t* prev, uint8_t* frontier,
               const std::vector<std::u16string>& kinds, Scratch& s) {
  napi_value seq_v, body_v, hex_v, index_v;
  if (napi_get_element(env, row, 0, &seq_v) != napi_ok || napi_get_element(env, row, 1, &body_v) != napi_ok ||
      napi_get_element(env, row, 2, &hex_v) != napi_ok || napi_get_element(env, row, 3, &index_v) != napi_ok) {
    return false;
  }
  double seq;
  if (napi_get_value_double(env, seq_v, &seq) != napi_ok || seq != expected || seq >= limit) return false;
  napi_valuetype t;
  if (napi_typeof(env, body_v, &t) != napi_ok || t != napi_string) return false;
  if (napi_typeof(env, hex_v, &t) != napi_ok || t != napi_string) return false;
  if (napi_typeof(env, index_v, &t) != napi_ok || t != napi_string) return false;
  if (!ReadUtf16(env, body_v, s.body) || !PlainUtf8(s.body, s.utf8, s.utf8_length)) return false;

  Fields f;
  const Scanner scanner(s.body.data(), s.body.length);
  if (!ScanBody(scanner, prev, kinds, f) || f.seq != seq) return false;

  uint8_t leaf[kHash];
  Sha256(s.utf8.data(), s.utf8_length, leaf);
  if (!ReadUtf16(env, hex_v, s.hex) || s.hex.length < 2 * kHash || (s.hex.length - 2 * kHash) % (2 * kHash) != 0) {
    return false;
  }
  if (!HexMatches(s.hex.data(), leaf, kHash)) return false;

  if (!ReadUtf16(env, index_v, s.index)) return false;
  IndexKey(s.body.data(), f, s.key);
  if (s.key.size() != s.index.length ||
      memcmp(s.key.data(), s.index.data(), s.key.size() * sizeof(char16_t)) != 0) {
    return false;
  }

  // The nodes this leaf completes (extendHex), compared before the border changes.
  const uint64_t size = static_cast<uint64_t>(seq);
  uint8_t node[kHash];
  memcpy(node, leaf, kHash);
  uint8_t input[1 + 2 * kHash];
  input[0] = 0x01;
  size_t level = 0;
  const size_t stored_nodes = (s.hex.length - 2 * kHash) / (2 * kHash);
  size_t made = 0;
  for (uint64_t i = size; i % 2 == 1; i = (i - 1) / 2, level++) {
    if (level >= static_cast<size_t>(kMaxLevels) - 1) return false;
    memcpy(input + 1, frontier + level * kHash, kHash);
    memcpy(input + 1 + kHash, node, kHash);
    Sha256(input, sizeof input, node);
    if (made >= stored_nodes || !HexMatches(s.hex.data() + 2 * kHash * (1 + made), node, kHash)) return false;
    made += 1;
  }
  if (made != stored_nodes) return false;
  memcpy(frontier + level * kHash, node, kHash);
  memcpy(prev, leaf, kHash);
  return true;
}

bool KindList(napi_env env, napi_value v, std::vector<std::u16string>& kinds) {
  Text all;
  if (!ReadUtf16(env, v, all)) return false;
  size_t start = 0;
  for (size_t i = 0; i <= all.length; i++) {
    if (i == all.length || all.data()[i] == u'\n') {
      if (i > start) kinds.emplace_back(all.data() + start, i - start);
      start = i + 1;
    }
  }
  return !kinds.empty();
}

}  // namespace

// auditWalk(rows, from, limitSeq, expected, prev, frontier, kinds): the number of rows from `from` on
// that the walk accepts, the state (prev: 32 bytes, frontier: 64 levels of 32 bytes, level l valid when
// bit l of the size is set) moved past them in place.
Napi::Value AuditWalkJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 7 || !info[0].IsArray() || !info[1].IsNumber() || !info[2].IsNumber() ||
      !info[3].IsNumber() || !info[4].IsTypedArray() || !info[5].IsTypedArray() || !info[6].IsString()) {
    Napi::TypeError::New(env, "auditWalk(rows, from, limitSeq, expected, prev, frontier, kinds)")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Array rows = info[0].As<Napi::Array>();
  const uint32_t from = info[1].As<Napi::Number>().Uint32Value();
  const double limit = info[2].As<Napi::Number>().DoubleValue();
  double expected = info[3].As<Napi::Number>().DoubleValue();
  Napi::Uint8Array prev = info[4].As<Napi::Uint8Array>();
  Napi::Uint8Array frontier = info[5].As<Napi::Uint8Array>();
  if (prev.ByteLength() != kHash || frontier.ByteLength() != kHash * kMaxLevels) {
    Napi::RangeError::New(env, "auditWalk: prev must be 32 bytes and frontier 64 x 32 bytes")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::vector<std::u16string> kinds;
  if (!KindList(env, info[6], kinds)) {
    Napi::TypeError::New(env, "auditWalk: kinds must be a newline-separated list").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  thread_local Scratch scratch;
  const uint32_t length = rows.Length();
  uint32_t i = from;
  for (; i < length; i++) {
    napi_value row;
    bool is_array = false;
    if (napi_get_element(env, rows, i, &row) != napi_ok || napi_is_array(env, row, &is_array) != napi_ok ||
        !is_array) {
      break;
    }
    if (!AcceptRow(env, row, expected, limit, prev.Data(), frontier.Data(), kinds, scratch)) break;
    expected += 1;
  }
  return Napi::Number::New(env, i - from);
}
