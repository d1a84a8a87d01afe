// A zip archive written with libzip whose entries are produced lazily: each entry is
// a libzip source callback (zip_source_function) that pulls the next piece from an
// EntryProducer only when libzip's deflater asks for more, so an entry is never held
// in memory whole. Entries of unknown size are written with zip64 headers, so entries
// and archives over 4 GiB work. The SHA-256 and size of every entry are computed as
// it streams past.
//
//   ZipWriter zip(path, /*deflate_level=*/1);
//   zip.Add("data.json", std::make_unique<MyProducer>());
//   zip.Close();                      // runs the producers, in the order added
//   for (auto& e : zip.entries()) ... // e.name, e.bytes, e.sha256
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

struct zip;

namespace labelloop::dl_manager {

// Produces one entry's bytes, piece by piece.
class EntryProducer {
 public:
  virtual ~EntryProducer() = default;
  // Called once, when libzip starts reading the entry.
  virtual void Open() {}
  // Appends the next piece to *out. Returns false once the entry is complete (the
  // last call may still append bytes). May throw: the archive then fails.
  virtual bool Next(std::string* out) = 0;
  // JSON records written, for entries that are arrays of records (else 0).
  virtual int64_t records() const { return 0; }
};

// An entry that is a string already in memory (README, model, manifest parts).
class StringProducer : public EntryProducer {
 public:
  explicit StringProducer(std::string text) : text_(std::move(text)) {}
  bool Next(std::string* out) override {
    out->append(text_);
    text_.clear();
    return false;
  }

 private:
  std::string text_;
};

// Runs another producer on a thread of its own, up to `max_chunks` pieces of
// `chunk_bytes` ahead of libzip, so that an entry's bytes are produced (rows read and
// formatted) on one core while libzip deflates them on another. The inner producer is
// opened, read and left on that thread; its exceptions reach libzip through Next().
class ThreadedProducer : public EntryProducer {
 public:
  explicit ThreadedProducer(std::unique_ptr<EntryProducer> inner, size_t chunk_bytes = 1 << 20,
                            size_t max_chunks = 4);
  ~ThreadedProducer() override;  // stops the thread (at its next piece) and joins it
  ThreadedProducer(const ThreadedProducer&) = delete;
  ThreadedProducer& operator=(const ThreadedProducer&) = delete;

  void Open() override;
  bool Next(std::string* out) override;
  int64_t records() const override { return records_; }

 private:
  void Run();

  std::unique_ptr<EntryProducer> inner_;
  size_t chunk_bytes_;
  size_t max_chunks_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> chunks_;  // guarded by mu_
  bool finished_ = false;           // guarded by mu_: the inner producer is done (or failed)
  bool stop_ = false;               // guarded by mu_
  std::exception_ptr error_;        // guarded by mu_
  int64_t records_ = 0;             // set once finished
};

struct EntryStats {
  std::string name;
  uint64_t bytes = 0;
  int64_t records = 0;
  std::string sha256;
};

class ZipWriter {
 public:
  ZipWriter(const std::string& path, int deflate_level);
  ~ZipWriter();  // discards an archive that was not closed
  ZipWriter(const ZipWriter&) = delete;
  ZipWriter& operator=(const ZipWriter&) = delete;

  // Adds an entry (deflated at the writer's level); nothing is read until Close().
  void Add(const std::string& name, std::unique_ptr<EntryProducer> producer);
  // Writes the archive: runs every producer in order. Rethrows a producer's exception;
  // throws std::runtime_error on libzip errors. The file is complete only on success.
  void Close();

  // Stats of the entries whose producers have finished, in the order added.
  const std::vector<EntryStats>& entries() const { return stats_; }
  // Stats of an entry by name, once finished (nullptr before).
  const EntryStats* Find(const std::string& name) const;

  struct Source;  // the state behind one zip_source_function

 private:
  zip* archive_ = nullptr;
  std::string path_;
  int level_;
  std::vector<std::unique_ptr<Source>> sources_;
  std::vector<EntryStats> stats_;
  std::exception_ptr error_;
  friend struct Source;
};

}  // namespace labelloop::dl_manager
