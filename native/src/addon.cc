// Linux-only system calls the core needs and Node does not expose: CPU affinity of every thread,
// the current CPU and NUMA node, page-cache residency (mincore), posix_fadvise, and inode flags
// (FS_NOCOW_FL for the SQLite directory on BTRFS); and the audit verify walk's fast path (audit_walk.cc).
//
// Every failure becomes a JS Error with `code` (the errno name), `errno`, `syscall` and, where
// there is one, `path`; nothing here aborts the process. Built without C++ exceptions: each
// function throws into JS and returns an empty value.

#include <napi.h>

#include "audit_walk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace {

// Closes a file descriptor on every path out of a function.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name != nullptr ? std::string(name) : "E" + std::to_string(err);
}

// Throws `<what>: <strerror> (<ENAME>)` with code/errno/syscall/path set; returns undefined so
// callers can `return ThrowErrno(...)`.
Napi::Value ThrowErrno(Napi::Env env, int err, const std::string& syscall, const std::string& what,
                       const std::string& path = "") {
  std::string message = what + ": " + strerror(err) + " (" + ErrnoName(err) + ")";
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, ErrnoName(err)));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  if (!path.empty()) e.Set("path", Napi::String::New(env, path));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value ThrowType(Napi::Env env, const std::string& message) {
  Napi::TypeError e = Napi::TypeError::New(env, message);
  e.Set("code", Napi::String::New(env, "ERR_INVALID_ARG_TYPE"));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

bool ReadPath(const Napi::CallbackInfo& info, size_t index, std::string* out) {
  if (info.Length() <= index || !info[index].IsString()) {
    ThrowType(info.Env(), "argument " + std::to_string(index + 1) + " must be a path string");
    return false;
  }
  *out = info[index].As<Napi::String>().Utf8Value();
  if (out->find('\0') != std::string::npos) {
    ThrowType(info.Env(), "the path contains a NUL byte");
    return false;
  }
  return true;
}

// An optional non-negative integer argument (undefined -> fallback).
bool ReadOffset(const Napi::CallbackInfo& info, size_t index, int64_t fallback, const char* name,
                int64_t* out) {
  if (info.Length() <= index || info[index].IsUndefined()) {
    *out = fallback;
    return true;
  }
  if (!info[index].IsNumber()) {
    ThrowType(info.Env(), std::string(name) + " must be a number");
    return false;
  }
  double v = info[index].As<Napi::Number>().DoubleValue();
  if (!(v >= 0) || v > 9007199254740991.0 || v != static_cast<double>(static_cast<int64_t>(v))) {
    ThrowType(info.Env(), std::string(name) + " must be a non-negative integer");
    return false;
  }
  *out = static_cast<int64_t>(v);
  return true;
}

// A CPU set large enough for the kernel's nr_cpu_ids (sched_getaffinity fails with EINVAL when
// the buffer is smaller), grown on demand.
class CpuMask {
 public:
  explicit CpuMask(int cpus) { Resize(cpus); }
  ~CpuMask() { CPU_FREE(set_); }
  CpuMask(const CpuMask&) = delete;
  CpuMask& operator=(const CpuMask&) = delete;
  void Resize(int cpus) {
    if (set_ != nullptr) CPU_FREE(set_);
    cpus_ = cpus;
    set_ = CPU_ALLOC(cpus);
    size_ = CPU_ALLOC_SIZE(cpus);
    CPU_ZERO_S(size_, set_);
  }
  cpu_set_t* set() { return set_; }
  size_t size() const { return size_; }
  int cpus() const { return cpus_; }

 private:
  cpu_set_t* set_ = nullptr;
  size_t size_ = 0;
  int cpus_ = 0;
};

int InitialMaskCpus() {
  long configured = sysconf(_SC_NPROCESSORS_CONF);
  return configured > 1024 ? static_cast<int>(configured) : 1024;
}

// sched_getaffinity into `mask`, growing it while the kernel says the buffer is too small.
int GetAffinity(pid_t tid, CpuMask* mask) {
  for (;;) {
    if (sched_getaffinity(tid, mask->size(), mask->set()) == 0) return 0;
    if (errno != EINVAL || mask->cpus() >= (1 << 20)) return errno;
    mask->Resize(mask->cpus() * 2);
  }
}

Napi::Array MaskToArray(Napi::Env env, CpuMask* mask) {
  Napi::Array cpus = Napi::Array::New(env);
  uint32_t n = 0;
  for (int cpu = 0; cpu < mask->cpus(); cpu++) {
    if (CPU_ISSET_S(cpu, mask->size(), mask->set())) cpus.Set(n++, Napi::Number::New(env, cpu));
  }
  return cpus;
}

// The thread ids in /proc/self/task now (errno on failure to read the directory).
int ListTasks(std::set<pid_t>* tids) {
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return errno;
  errno = 0;
  while (dirent* entry = readdir(dir)) {
    char* end = nullptr;
    long tid = strtol(entry->d_name, &end, 10);
    if (end != entry->d_name && *end == '\0' && tid > 0) tids->insert(static_cast<pid_t>(tid));
  }
  int err = errno;
  closedir(dir);
  return err;
}

// getAffinity(tid?: number): number[] — the CPUs the thread (default: the calling one) may run on.
Napi::Value GetAffinityJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t tid = 0;
  if (!ReadOffset(info, 0, 0, "tid", &tid)) return env.Undefined();
  CpuMask mask(InitialMaskCpus());
  int err = GetAffinity(static_cast<pid_t>(tid), &mask);
  if (err != 0) {
    return ThrowErrno(env, err, "sched_getaffinity", "sched_getaffinity(tid " + std::to_string(tid) + ")");
  }
  return MaskToArray(env, &mask);
}

// setAffinityAllThreads(cpus: number[]): { threads: number[], vanished: number[] }
// Sets the mask on every thread of the process. /proc/self/task is re-read until a pass finds no
// new thread, so threads started meanwhile are covered; a thread that exits mid-loop (ESRCH) is
// listed in `vanished`, not an error. If any other failure happens, the threads already changed
// get their previous masks back before the error is thrown: never a half-pinned process.
Napi::Value SetAffinityAllThreadsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) return ThrowType(env, "cpus must be an array of CPU numbers");
  Napi::Array list = info[0].As<Napi::Array>();
  std::vector<int> wanted;
  int highest = -1;
  for (uint32_t i = 0; i < list.Length(); i++) {
    Napi::Value v = list.Get(i);
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0) || d > 1048575 || d != static_cast<double>(static_cast<int>(d))) {
      return ThrowType(env, "cpus[" + std::to_string(i) + "] must be a CPU number (a non-negative integer)");
    }
    wanted.push_back(static_cast<int>(d));
    if (static_cast<int>(d) > highest) highest = static_cast<int>(d);
  }
  if (wanted.empty()) return ThrowType(env, "cpus must name at least one CPU");

  int maskCpus = InitialMaskCpus();
  if (highest + 1 > maskCpus) maskCpus = highest + 1;
  CpuMask mask(maskCpus);
  for (int cpu : wanted) CPU_SET_S(cpu, mask.size(), mask.set());

  std::map<pid_t, std::vector<int>> previous;  // tid -> its mask before, for the rollback
  std::vector<pid_t> done;
  std::vector<pid_t> vanished;
  std::set<pid_t> seen;
  int failure = 0;
  pid_t failedTid = 0;
  for (int pass = 0; pass < 16 && failure == 0; pass++) {
    std::set<pid_t> tids;
    int err = ListTasks(&tids);
    if (err != 0) {
      failure = err;
      break;
    }
    bool found = false;
    for (pid_t tid : tids) {
      if (seen.count(tid) != 0) continue;
      seen.insert(tid);
      found = true;
      CpuMask old(InitialMaskCpus());
      err = GetAffinity(tid, &old);
      if (err == ESRCH) {
        vanished.push_back(tid);
        continue;
      }
      if (err != 0) {
        failure = err;
        failedTid = tid;
        break;
      }
      if (sched_setaffinity(tid, mask.size(), mask.set()) != 0) {
        if (errno == ESRCH) {
          vanished.push_back(tid);
          continue;
        }
        failure = errno;
        failedTid = tid;
        break;
      }
      std::vector<int> oldCpus;
      for (int cpu = 0; cpu < old.cpus(); cpu++) {
        if (CPU_ISSET_S(cpu, old.size(), old.set())) oldCpus.push_back(cpu);
      }
      previous[tid] = oldCpus;
      done.push_back(tid);
    }
    if (!found) break;
  }

  if (failure != 0) {
    for (pid_t tid : done) {
      const std::vector<int>& cpus = previous[tid];
      int top = 0;
      for (int cpu : cpus) top = cpu + 1 > top ? cpu + 1 : top;
      CpuMask back(top > InitialMaskCpus() ? top : InitialMaskCpus());
      for (int cpu : cpus) CPU_SET_S(cpu, back.size(), back.set());
      sched_setaffinity(tid, back.size(), back.set());  // best effort: the thread may be gone
    }
    std::string what = failedTid == 0 ? std::string("reading /proc/self/task")
                                      : "sched_setaffinity(tid " + std::to_string(failedTid) + ")";
    return ThrowErrno(env, failure, failedTid == 0 ? "opendir" : "sched_setaffinity",
                      what + " (threads already changed were restored)");
  }

  Napi::Object result = Napi::Object::New(env);
  Napi::Array threads = Napi::Array::New(env, done.size());
  for (uint32_t i = 0; i < done.size(); i++) threads.Set(i, Napi::Number::New(env, done[i]));
  Napi::Array gone = Napi::Array::New(env, vanished.size());
  for (uint32_t i = 0; i < vanished.size(); i++) gone.Set(i, Napi::Number::New(env, vanished[i]));
  result.Set("threads", threads);
  result.Set("vanished", gone);
  return result;
}

// getcpu(): { cpu, node } — where the calling thread runs right now.
Napi::Value GetCpuJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  unsigned cpu = 0;
  unsigned node = 0;
  if (syscall(SYS_getcpu, &cpu, &node, nullptr) != 0) return ThrowErrno(env, errno, "getcpu", "getcpu");
  Napi::Object result = Napi::Object::New(env);
  result.Set("cpu", Napi::Number::New(env, cpu));
  result.Set("node", Napi::Number::New(env, node));
  return result;
}

// mincore(path, offset?, length?): { pageSize, fileSize, totalPages, residentPages }
// Maps the range read-only (mapping faults nothing in), asks mincore, unmaps; in 1 GiB windows so
// the residency vector stays small for huge files.
Napi::Value MincoreJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  int64_t offset = 0;
  int64_t length = 0;
  if (!ReadPath(info, 0, &path) || !ReadOffset(info, 1, 0, "offset", &offset) ||
      !ReadOffset(info, 2, -1, "length", &length)) {
    return env.Undefined();
  }
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return ThrowErrno(env, errno, "open", "open " + path, path);
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return ThrowErrno(env, errno, "fstat", "fstat " + path, path);
  if (!S_ISREG(st.st_mode)) {
    return ThrowErrno(env, EINVAL, "mincore", path + " is not a regular file", path);
  }
  const int64_t page = sysconf(_SC_PAGESIZE);
  const int64_t size = st.st_size;
  int64_t start = offset - offset % page;  // mmap offsets must be page-aligned
  int64_t end = length < 0 ? size : offset + length;
  if (end > size) end = size;
  int64_t total = 0;
  int64_t resident = 0;
  const int64_t window = int64_t(1) << 30;
  std::vector<unsigned char> vec;
  for (int64_t pos = start; pos < end; pos += window) {
    const int64_t len = end - pos < window ? end - pos : window;
    void* map = mmap(nullptr, static_cast<size_t>(len), PROT_READ, MAP_SHARED, fd.get(), static_cast<off_t>(pos));
    if (map == MAP_FAILED) return ThrowErrno(env, errno, "mmap", "mmap " + path, path);
    const int64_t pages = (len + page - 1) / page;
    vec.assign(static_cast<size_t>(pages), 0);
    int rc = mincore(map, static_cast<size_t>(len), vec.data());
    int err = errno;
    munmap(map, static_cast<size_t>(len));
    if (rc != 0) return ThrowErrno(env, err, "mincore", "mincore " + path, path);
    total += pages;
    for (unsigned char b : vec) resident += b & 1;
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("pageSize", Napi::Number::New(env, static_cast<double>(page)));
  result.Set("fileSize", Napi::Number::New(env, static_cast<double>(size)));
  result.Set("totalPages", Napi::Number::New(env, static_cast<double>(total)));
  result.Set("residentPages", Napi::Number::New(env, static_cast<double>(resident)));
  return result;
}

// fadvise(path, advice, offset?, length?): posix_fadvise on the range (length 0: to the end).
Napi::Value FadviseJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  if (!ReadPath(info, 0, &path)) return env.Undefined();
  if (info.Length() < 2 || !info[1].IsString()) {
    return ThrowType(env, "advice must be one of normal, sequential, random, willneed, dontneed, noreuse");
  }
  const std::string name = info[1].As<Napi::String>().Utf8Value();
  static const std::map<std::string, int> advices = {
      {"normal", POSIX_FADV_NORMAL},     {"sequential", POSIX_FADV_SEQUENTIAL},
      {"random", POSIX_FADV_RANDOM},     {"willneed", POSIX_FADV_WILLNEED},
      {"dontneed", POSIX_FADV_DONTNEED}, {"noreuse", POSIX_FADV_NOREUSE},
  };
  auto advice = advices.find(name);
  if (advice == advices.end()) {
    return ThrowType(env, "advice must be one of normal, sequential, random, willneed, dontneed, noreuse; got " + name);
  }
  int64_t offset = 0;
  int64_t length = 0;
  if (!ReadOffset(info, 2, 0, "offset", &offset) || !ReadOffset(info, 3, 0, "length", &length)) {
    return env.Undefined();
  }
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return ThrowErrno(env, errno, "open", "open " + path, path);
  // posix_fadvise returns the error number instead of setting errno
  int err = posix_fadvise(fd.get(), static_cast<off_t>(offset), static_cast<off_t>(length), advice->second);
  if (err != 0) return ThrowErrno(env, err, "posix_fadvise", "posix_fadvise(" + name + ") " + path, path);
  return env.Undefined();
}

int OpenForFlags(const std::string& path) { return open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW); }

// getInodeFlags(path): number — FS_IOC_GETFLAGS (what lsattr shows).
Napi::Value GetInodeFlagsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  if (!ReadPath(info, 0, &path)) return env.Undefined();
  Fd fd(OpenForFlags(path));
  if (fd.get() < 0) return ThrowErrno(env, errno, "open", "open " + path, path);
  int flags = 0;  // the kernel reads and writes an int, whatever the ioctl's declared type says
  if (ioctl(fd.get(), FS_IOC_GETFLAGS, &flags) != 0) {
    return ThrowErrno(env, errno, "ioctl", "FS_IOC_GETFLAGS " + path, path);
  }
  return Napi::Number::New(env, static_cast<uint32_t>(flags));
}

// setInodeFlags(path, set, clear): number — FS_IOC_SETFLAGS with `set` added and `clear` removed;
// returns the flags read back afterwards.
Napi::Value SetInodeFlagsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  int64_t add = 0;
  int64_t remove = 0;
  if (!ReadPath(info, 0, &path) || !ReadOffset(info, 1, 0, "set", &add) || !ReadOffset(info, 2, 0, "clear", &remove)) {
    return env.Undefined();
  }
  Fd fd(OpenForFlags(path));
  if (fd.get() < 0) return ThrowErrno(env, errno, "open", "open " + path, path);
  int flags = 0;
  if (ioctl(fd.get(), FS_IOC_GETFLAGS, &flags) != 0) {
    return ThrowErrno(env, errno, "ioctl", "FS_IOC_GETFLAGS " + path, path);
  }
  flags = (flags | static_cast<int>(add)) & ~static_cast<int>(remove);
  if (ioctl(fd.get(), FS_IOC_SETFLAGS, &flags) != 0) {
    return ThrowErrno(env, errno, "ioctl", "FS_IOC_SETFLAGS " + path, path);
  }
  if (ioctl(fd.get(), FS_IOC_GETFLAGS, &flags) != 0) {
    return ThrowErrno(env, errno, "ioctl", "FS_IOC_GETFLAGS " + path, path);
  }
  return Napi::Number::New(env, static_cast<uint32_t>(flags));
}

// mmap(PROT_READ, MAP_SHARED) of a whole regular file as an ArrayBuffer that the garbage collector
// unmaps (its finalizer). Node only: Electron forbids external buffers, and the core runs in Node.
Napi::Value MapFileJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  if (!ReadPath(info, 0, &path)) return env.Undefined();
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return ThrowErrno(env, errno, "open", "open " + path, path);
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return ThrowErrno(env, errno, "fstat", "fstat " + path, path);
  if (!S_ISREG(st.st_mode)) return ThrowErrno(env, EINVAL, "mmap", path + " is not a regular file", path);
  if (st.st_size == 0) return Napi::ArrayBuffer::New(env, 0);
  const size_t len = static_cast<size_t>(st.st_size);
  void* map = mmap(nullptr, len, PROT_READ, MAP_SHARED, fd.get(), 0);
  if (map == MAP_FAILED) return ThrowErrno(env, errno, "mmap", "mmap " + path, path);
  // the mapping outlives the descriptor (closed by Fd); the finalizer gets the length as its hint
  return Napi::ArrayBuffer::New(
      env, map, len, [](Napi::Env, void* data, size_t* size) {
        munmap(data, *size);
        delete size;
      },
      new size_t(len));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("mapFile", Napi::Function::New(env, MapFileJs, "mapFile"));
  exports.Set("getAffinity", Napi::Function::New(env, GetAffinityJs, "getAffinity"));
  exports.Set("setAffinityAllThreads", Napi::Function::New(env, SetAffinityAllThreadsJs, "setAffinityAllThreads"));
  exports.Set("getcpu", Napi::Function::New(env, GetCpuJs, "getcpu"));
  exports.Set("mincore", Napi::Function::New(env, MincoreJs, "mincore"));
  exports.Set("fadvise", Napi::Function::New(env, FadviseJs, "fadvise"));
  exports.Set("getInodeFlags", Napi::Function::New(env, GetInodeFlagsJs, "getInodeFlags"));
  exports.Set("setInodeFlags", Napi::Function::New(env, SetInodeFlagsJs, "setInodeFlags"));
  exports.Set("auditWalk", Napi::Function::New(env, AuditWalkJs, "auditWalk"));
  return exports;
}

}  // namespace

NODE_API_MODULE(opdbus_native, Init)
