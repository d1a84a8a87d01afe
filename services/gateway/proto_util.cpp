#include "services/gateway/proto_util.hpp"

#include <google/protobuf/reflection.h>

namespace labelloop::gateway {
namespace pb = google::protobuf;

namespace {

std::optional<int64_t> IntOf(const pb::Message& m, const pb::FieldDescriptor* f) {
  const auto* r = m.GetReflection();
  switch (f->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_INT64:
      return r->GetInt64(m, f);
    case pb::FieldDescriptor::CPPTYPE_INT32:
      return r->GetInt32(m, f);
    case pb::FieldDescriptor::CPPTYPE_UINT64:
      return static_cast<int64_t>(r->GetUInt64(m, f));
    case pb::FieldDescriptor::CPPTYPE_UINT32:
      return r->GetUInt32(m, f);
    default:
      return std::nullopt;
  }
}

bool IsInt(const pb::FieldDescriptor* f) {
  return !f->is_repeated() && (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_INT64 ||
                               f->cpp_type() == pb::FieldDescriptor::CPPTYPE_INT32);
}

void Collect(const pb::Message& m, int depth, std::vector<std::pair<std::string, int64_t>>* out) {
  if (depth > 6) return;
  static const std::vector<std::pair<std::string, std::string>> kIdOfType = {
      {"Item", "item_id"},
      {"TrainingJob", "job_id"},
      {"ModelInfo", "model_id"},
      {"Download", "download_id"}};
  const auto* d = m.GetDescriptor();
  const auto* r = m.GetReflection();
  for (const auto& [type, kind] : kIdOfType) {
    if (d->name() == type) {
      const auto* f = d->FindFieldByName("id");
      if (f != nullptr && IsInt(f)) {
        auto v = IntOf(m, f);
        if (v && *v > 0) out->emplace_back(kind, *v);
      }
    }
  }
  for (int i = 0; i < d->field_count(); ++i) {
    const auto* f = d->field(i);
    if (IsInt(f) && (f->name() == "item_id" || f->name() == "job_id" || f->name() == "model_id" ||
                     f->name() == "download_id")) {
      auto v = IntOf(m, f);
      if (v && *v > 0) out->emplace_back(f->name(), *v);
    } else if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE && !f->is_map()) {
      if (f->is_repeated()) {
        const int n = r->FieldSize(m, f);
        for (int j = 0; j < n; ++j) Collect(r->GetRepeatedMessage(m, f, j), depth + 1, out);
      } else if (r->HasField(m, f)) {
        Collect(r->GetMessage(m, f), depth + 1, out);
      }
    }
  }
}

}  // namespace

std::unique_ptr<pb::Message> NewMessage(const pb::Descriptor* type) {
  const pb::Message* proto = pb::MessageFactory::generated_factory()->GetPrototype(type);
  return std::unique_ptr<pb::Message>(proto->New());
}

std::optional<int64_t> GetInt(const pb::Message& m, std::string_view path) {
  const pb::Message* cur = &m;
  while (true) {
    const auto dot = path.find('.');
    const std::string name(path.substr(0, dot));
    const auto* f = cur->GetDescriptor()->FindFieldByName(name);
    if (f == nullptr || f->is_repeated()) return std::nullopt;
    if (dot == std::string_view::npos) return IntOf(*cur, f);
    if (f->cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE) return std::nullopt;
    if (!cur->GetReflection()->HasField(*cur, f)) return std::nullopt;
    cur = &cur->GetReflection()->GetMessage(*cur, f);
    path = path.substr(dot + 1);
  }
}

bool HasPath(const pb::Descriptor* type, std::string_view path) {
  while (type != nullptr) {
    const auto dot = path.find('.');
    const auto* f = type->FindFieldByName(std::string(path.substr(0, dot)));
    if (f == nullptr || f->is_repeated()) return false;
    if (dot == std::string_view::npos) return IsInt(f);
    type = f->message_type();
    path = path.substr(dot + 1);
  }
  return false;
}

bool SetInt(pb::Message* m, std::string_view field, int64_t value) {
  const auto* f = m->GetDescriptor()->FindFieldByName(std::string(field));
  if (f == nullptr || f->is_repeated()) return false;
  if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_INT64) {
    m->GetReflection()->SetInt64(m, f, value);
    return true;
  }
  if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_INT32) {
    m->GetReflection()->SetInt32(m, f, static_cast<int32_t>(value));
    return true;
  }
  return false;
}

bool OverwriteStrings(pb::Message* m, const std::vector<std::string>& fields,
                      const std::string& value) {
  bool changed = false;
  for (const auto& name : fields) {
    const auto* f = m->GetDescriptor()->FindFieldByName(name);
    if (f == nullptr || f->is_repeated() || f->cpp_type() != pb::FieldDescriptor::CPPTYPE_STRING) {
      continue;
    }
    if (m->GetReflection()->GetString(*m, f) != value) {
      m->GetReflection()->SetString(m, f, value);
      changed = true;
    }
  }
  return changed;
}

std::vector<std::pair<std::string, int64_t>> CollectObjectIds(const pb::Message& m) {
  std::vector<std::pair<std::string, int64_t>> out;
  Collect(m, 0, &out);
  return out;
}

void FilterByProject(pb::Message* m, const std::set<int64_t>& allowed) {
  const auto* d = m->GetDescriptor();
  const auto* r = m->GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const auto* f = d->field(i);
    if (!f->is_repeated() || f->is_map() || f->cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE) {
      continue;
    }
    const auto* el = f->message_type();
    const auto* id = el->FindFieldByName("project_id");
    if (id == nullptr || !IsInt(id)) id = el->FindFieldByName("id");
    if (id == nullptr || !IsInt(id)) continue;
    // Keep the allowed elements in order: swap them to the front, then truncate.
    int kept = 0;
    const int n = r->FieldSize(*m, f);
    for (int j = 0; j < n; ++j) {
      auto v = IntOf(r->GetRepeatedMessage(*m, f, j), id);
      if (v && allowed.count(*v) > 0) {
        if (kept != j) r->SwapElements(m, f, kept, j);
        ++kept;
      }
    }
    for (int j = n; j > kept; --j) r->RemoveLast(m, f);
  }
}

std::optional<int64_t> CreatedProjectId(const pb::Message& m) {
  for (const char* path : {"project_id", "id", "project.id", "project.project_id"}) {
    auto v = GetInt(m, path);
    if (v && *v > 0) return v;
  }
  return std::nullopt;
}

std::string ToString(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  (void)buffer.Dump(&slices);
  std::string out;
  out.reserve(buffer.Length());
  for (const auto& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

grpc::ByteBuffer ToBuffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

}  // namespace labelloop::gateway
