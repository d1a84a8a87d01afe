// Test helpers shared by the JSON printer and parser tests: every message type of the
// public API, and messages of those types filled at random.
#pragma once

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <functional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "labelloop/v1/dl_manager.pb.h"
#include "labelloop/v1/gateway.pb.h"
#include "labelloop/v1/labeling.pb.h"
#include "labelloop/v1/ranking.pb.h"
#include "labelloop/v1/training.pb.h"

namespace labelloop::gateway::test_messages {
namespace pb = google::protobuf;
using FD = pb::FieldDescriptor;

// Fills every field of a message (and its sub-messages, to depth 3) with random values of
// its kind: text with quotes, escapes, control characters and non-ASCII, any bytes,
// negative and fractional numbers, timestamps with each fraction precision.
class Filler {
 public:
  explicit Filler(uint32_t seed) : rng_(seed) {}

  void Fill(pb::Message* m, int depth) {
    const auto* d = m->GetDescriptor();
    const auto* r = m->GetReflection();
    if (d->full_name() == "google.protobuf.Timestamp") {
      static const int32_t kNanos[] = {0, 123000000, 123456000, 123456789, 5};
      r->SetInt64(m, d->FindFieldByNumber(1), Pick(-5000000000LL, 250000000000LL));
      r->SetInt32(m, d->FindFieldByNumber(2), kNanos[Pick(0, 4)]);
      return;
    }
    for (int i = 0; i < d->field_count(); ++i) {
      const auto* f = d->field(i);
      if (Pick(0, 3) == 0) continue;  // some fields stay unset
      if (f->cpp_type() == FD::CPPTYPE_MESSAGE && depth >= 3) continue;
      if (f->is_repeated()) {
        const int n = static_cast<int>(Pick(0, 3));
        for (int j = 0; j < n; ++j) {
          if (f->is_map()) {
            // Distinct keys: a map cannot hold one twice.
            auto* entry = r->AddMessage(m, f);
            Fill(entry, depth + 1);
            const auto* key = entry->GetDescriptor()->map_key();
            if (key->cpp_type() == FD::CPPTYPE_STRING) {
              entry->GetReflection()->SetString(entry, key, "k\"" + std::to_string(j));
            } else {
              entry->GetReflection()->SetInt64(entry, key, j);
            }
          } else if (f->cpp_type() == FD::CPPTYPE_MESSAGE) {
            Fill(r->AddMessage(m, f), depth + 1);
          } else {
            AddScalar(m, f);
          }
        }
      } else if (f->cpp_type() == FD::CPPTYPE_MESSAGE) {
        Fill(r->MutableMessage(m, f), depth + 1);
      } else {
        SetScalar(m, f);
      }
    }
  }

 private:
  int64_t Pick(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng_);
  }

  std::string Text() {
    static const char* kParts[] = {"a",    "Zé", "\"",  "\\", "\n", "\t",
                                   "\x01", "€",  "<>&", " ",  "x/y"};
    std::string s;
    const int n = static_cast<int>(Pick(0, 6));
    for (int i = 0; i < n; ++i) s += kParts[Pick(0, 10)];
    return s;
  }

  std::string Bytes() {
    std::string s(static_cast<size_t>(Pick(0, 7)), '\0');
    for (auto& c : s) c = static_cast<char>(Pick(0, 255));
    return s;
  }

  double Real() {
    static const double kValues[] = {0.0, -1.5, 0.1, 1e-7, 123456.789, 3e20, -0.3};
    return Pick(0, 1) == 0 ? kValues[Pick(0, 6)]
                           : std::uniform_real_distribution<double>(-1e6, 1e6)(rng_);
  }

  void SetScalar(pb::Message* m, const FD* f) {
    const auto* r = m->GetReflection();
    switch (f->cpp_type()) {
      case FD::CPPTYPE_INT32:
        r->SetInt32(m, f, static_cast<int32_t>(Pick(-100000, 100000)));
        break;
      case FD::CPPTYPE_UINT32:
        r->SetUInt32(m, f, static_cast<uint32_t>(Pick(0, 4000000000)));
        break;
      case FD::CPPTYPE_INT64:
        r->SetInt64(m, f, Pick(-(1LL << 60), 1LL << 60));
        break;
      case FD::CPPTYPE_UINT64:
        r->SetUInt64(m, f, static_cast<uint64_t>(Pick(0, 1LL << 62)) * 3);
        break;
      case FD::CPPTYPE_DOUBLE:
        r->SetDouble(m, f, Real());
        break;
      case FD::CPPTYPE_FLOAT:
        r->SetFloat(m, f, static_cast<float>(Real()));
        break;
      case FD::CPPTYPE_BOOL:
        r->SetBool(m, f, Pick(0, 1) == 1);
        break;
      case FD::CPPTYPE_ENUM:
        r->SetEnumValue(m, f,
                        f->enum_type()
                            ->value(static_cast<int>(Pick(0, f->enum_type()->value_count() - 1)))
                            ->number());
        break;
      case FD::CPPTYPE_STRING:
        r->SetString(m, f, f->type() == FD::TYPE_BYTES ? Bytes() : Text());
        break;
      case FD::CPPTYPE_MESSAGE:
        break;
    }
  }

  void AddScalar(pb::Message* m, const FD* f) {
    const auto* r = m->GetReflection();
    switch (f->cpp_type()) {
      case FD::CPPTYPE_INT32:
        r->AddInt32(m, f, static_cast<int32_t>(Pick(-100000, 100000)));
        break;
      case FD::CPPTYPE_UINT32:
        r->AddUInt32(m, f, static_cast<uint32_t>(Pick(0, 4000000000)));
        break;
      case FD::CPPTYPE_INT64:
        r->AddInt64(m, f, Pick(-(1LL << 60), 1LL << 60));
        break;
      case FD::CPPTYPE_UINT64:
        r->AddUInt64(m, f, static_cast<uint64_t>(Pick(0, 1LL << 62)));
        break;
      case FD::CPPTYPE_DOUBLE:
        r->AddDouble(m, f, Real());
        break;
      case FD::CPPTYPE_FLOAT:
        r->AddFloat(m, f, static_cast<float>(Real()));
        break;
      case FD::CPPTYPE_BOOL:
        r->AddBool(m, f, Pick(0, 1) == 1);
        break;
      case FD::CPPTYPE_ENUM:
        r->AddEnumValue(m, f,
                        f->enum_type()
                            ->value(static_cast<int>(Pick(0, f->enum_type()->value_count() - 1)))
                            ->number());
        break;
      case FD::CPPTYPE_STRING:
        r->AddString(m, f, f->type() == FD::TYPE_BYTES ? Bytes() : Text());
        break;
      case FD::CPPTYPE_MESSAGE:
        break;
    }
  }

  std::mt19937 rng_;
};

// Every message type of the public API's files, nested ones included.
inline std::vector<const pb::Descriptor*> AllTypes() {
  std::vector<const pb::Descriptor*> out;
  std::vector<const pb::FileDescriptor*> files = {
      v1::Project::descriptor()->file(), v1::LoginRequest::descriptor()->file(),
      v1::DownloadStatus_descriptor()->file(), v1::TrainingJob::descriptor()->file(),
      v1::GetScoresRequest::descriptor()->file()};
  std::function<void(const pb::Descriptor*)> add = [&](const pb::Descriptor* d) {
    if (d->map_key() != nullptr) return;  // map entries: printed as objects
    out.push_back(d);
    for (int i = 0; i < d->nested_type_count(); ++i) add(d->nested_type(i));
  };
  // By index: the loop appends to the vector it walks.
  for (size_t k = 0; k < files.size(); ++k) {
    const auto* file = files[k];
    for (int i = 0; i < file->dependency_count(); ++i) {
      if (file->dependency(i)->package() == "labelloop.v1") files.push_back(file->dependency(i));
    }
  }
  std::set<const pb::FileDescriptor*> seen;
  for (const auto* file : files) {
    if (!seen.insert(file).second) continue;
    for (int i = 0; i < file->message_type_count(); ++i) add(file->message_type(i));
  }
  return out;
}

}  // namespace labelloop::gateway::test_messages
