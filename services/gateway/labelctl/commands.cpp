#include "services/gateway/labelctl/commands.hpp"

#include <google/protobuf/util/json_util.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "common/grpc_server/status_names.hpp"
#include "labelloop/v1/dl_manager.grpc.pb.h"
#include "labelloop/v1/labeling.grpc.pb.h"
#include "labelloop/v1/labeling_ingest.grpc.pb.h"
#include "labelloop/v1/ranking.grpc.pb.h"
#include "labelloop/v1/training.grpc.pb.h"
#include "services/gateway/labelctl/progress.hpp"

namespace labelloop::labelctl {
namespace {

using grpc::ClientContext;
using grpc::Status;

std::string Json(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions opts;
  opts.always_print_primitive_fields = true;
  opts.add_whitespace = false;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(m, &out, opts);
  return out;
}

int Fail(const Status& s) {
  std::cerr << "labelctl: " << grpc_server::StatusCodeName(s.error_code()) << ": "
            << s.error_message() << "\n";
  if (s.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
    std::cerr << "labelctl: run `labelctl login` first\n";
  }
  return 1;
}

// Prints a message as JSON (--output json) or with the table printer.
int Show(const Out& o, const google::protobuf::Message& m, const std::function<void()>& table) {
  if (o.json) {
    std::cout << Json(m) << "\n";
  } else {
    table();
  }
  return 0;
}

std::string Fmt(double v, int digits = 3) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// A plain aligned table.
void Table(const std::vector<std::string>& header,
           const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> w(header.size());
  for (size_t i = 0; i < header.size(); ++i) w[i] = header[i].size();
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size() && i < w.size(); ++i) w[i] = std::max(w[i], r[i].size());
  }
  auto line = [&](const std::vector<std::string>& r) {
    for (size_t i = 0; i < w.size(); ++i) {
      const std::string cell = i < r.size() ? r[i] : "";
      std::cout << cell << std::string(w[i] - cell.size() + 2, ' ');
    }
    std::cout << "\n";
  };
  line(header);
  std::vector<std::string> sep;
  for (auto n : w) sep.push_back(std::string(n, '-'));
  line(sep);
  for (const auto& r : rows) line(r);
}

std::string Join(const google::protobuf::RepeatedPtrField<std::string>& v,
                 const std::string& sep = ",") {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

std::string RoleText(v1::Role r) {
  switch (r) {
    case v1::ROLE_ADMIN:
      return "admin";
    case v1::ROLE_MANAGER:
      return "manager";
    case v1::ROLE_ANNOTATOR:
      return "annotator";
    default:
      return "?";
  }
}

v1::Role ParseRole(const std::string& s) {
  if (s == "admin") return v1::ROLE_ADMIN;
  if (s == "manager") return v1::ROLE_MANAGER;
  if (s == "annotator") return v1::ROLE_ANNOTATOR;
  return v1::ROLE_UNSPECIFIED;
}

std::string ReadSecret(const std::string& prompt) {
  std::cerr << prompt << std::flush;
  termios old{};
  const bool tty = isatty(STDIN_FILENO) == 1 && tcgetattr(STDIN_FILENO, &old) == 0;
  if (tty) {
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  std::string s;
  std::getline(std::cin, s);
  if (tty) {
    tcsetattr(STDIN_FILENO, TCSANOW, &old);
    std::cerr << "\n";
  }
  return s;
}

std::string StateName(v1::TrainingJobState s) {
  std::string n = v1::TrainingJobState_Name(s);
  const std::string prefix = "TRAINING_JOB_STATE_";
  return n.rfind(prefix, 0) == 0 ? n.substr(prefix.size()) : n;
}

std::string DownloadStatusName(v1::DownloadStatus s) {
  std::string n = v1::DownloadStatus_Name(s);
  const std::string prefix = "DOWNLOAD_STATUS_";
  return n.rfind(prefix, 0) == 0 ? n.substr(prefix.size()) : n;
}

std::string Time(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0) return "";
  std::time_t s = t.seconds();
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", std::gmtime(&s));
  return buf;
}

}  // namespace

int CmdLogin(Out& o, const std::string& username, std::string password) {
  if (password.empty()) password = ReadSecret("password for " + username + ": ");
  auto stub = v1::GatewayService::NewStub(o.client->channel());
  ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  v1::LoginRequest req;
  req.set_username(username);
  req.set_password(password);
  v1::LoginResponse resp;
  auto s = stub->Login(&ctx, req, &resp);
  if (!s.ok()) return Fail(s);
  Login& l = o.client->login();
  l.gateway = o.client->gateway();
  l.username = resp.user().username();
  l.access_token = resp.access_token();
  l.refresh_token = resp.refresh_token();
  std::string error;
  if (!SaveLogin(o.client->token_path(), l, &error)) {
    std::cerr << "labelctl: " << error << "\n";
    return 1;
  }
  if (o.json) {
    v1::User u = resp.user();
    std::cout << Json(u) << "\n";
  } else {
    std::cout << "logged in as " << resp.user().username() << " (" << RoleText(resp.user().role())
              << "); token saved in " << o.client->token_path() << "\n";
  }
  return 0;
}

int CmdLogout(Out& o) {
  auto& l = o.client->login();
  if (!l.refresh_token.empty()) {
    auto stub = v1::GatewayService::NewStub(o.client->channel());
    ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::RefreshRequest req;
    req.set_refresh_token(l.refresh_token);
    v1::LogoutResponse resp;
    (void)stub->Logout(&ctx, req, &resp);
  }
  std::remove(o.client->token_path().c_str());
  if (!o.json) std::cout << "logged out\n";
  return 0;
}

int CmdWhoAmI(Out& o) {
  auto stub = v1::GatewayService::NewStub(o.client->channel());
  v1::User u;
  auto s = o.client->Call([&](ClientContext* c) { return stub->WhoAmI(c, {}, &u); });
  if (!s.ok()) return Fail(s);
  return Show(o, u, [&] {
    std::cout << u.username() << " (id " << u.id() << ", " << RoleText(u.role()) << ")"
              << (u.api_key_id() != 0 ? " via API key " + std::to_string(u.api_key_id()) : "")
              << "\n";
  });
}

int CmdUserCreate(Out& o, const std::string& name, const std::string& role, std::string password) {
  if (ParseRole(role) == v1::ROLE_UNSPECIFIED) {
    std::cerr << "labelctl: --role: admin, manager or annotator\n";
    return 2;
  }
  if (password.empty()) password = ReadSecret("password for the new user " + name + ": ");
  auto stub = v1::GatewayService::NewStub(o.client->channel());
  v1::CreateUserRequest req;
  req.set_username(name);
  req.set_password(password);
  req.set_role(ParseRole(role));
  v1::User u;
  auto s = o.client->Call([&](ClientContext* c) { return stub->CreateUser(c, req, &u); });
  if (!s.ok()) return Fail(s);
  return Show(o, u, [&] {
    std::cout << "user " << u.username() << " created (id " << u.id() << ", " << RoleText(u.role())
              << ")\n";
  });
}

int CmdUserList(Out& o) {
  auto stub = v1::GatewayService::NewStub(o.client->channel());
  v1::ListUsersResponse r;
  auto s = o.client->Call([&](ClientContext* c) { return stub->ListUsers(c, {}, &r); });
  if (!s.ok()) return Fail(s);
  return Show(o, r, [&] {
    std::vector<std::vector<std::string>> rows;
    for (const auto& u : r.users()) {
      rows.push_back({std::to_string(u.id()), u.username(), RoleText(u.role()),
                      u.disabled() ? "disabled" : "", Time(u.created_at())});
    }
    Table({"ID", "USERNAME", "ROLE", "STATE", "CREATED"}, rows);
  });
}

int CmdUserDisable(Out& o, int64_t id, bool disabled) {
  auto stub = v1::GatewayService::NewStub(o.client->channel());
  v1::SetUserDisabledRequest req;
  req.set_user_id(id);
  req.set_disabled(disabled);
  v1::User u;
  auto s = o.client->Call([&](ClientContext* c) { return stub->SetUserDisabled(c, req, &u); });
  if (!s.ok()) return Fail(s);
  return Show(o, u,
              [&] { std::cout << u.username() << (u.disabled() ? " disabled\n" : " enabled\n"); });
}

int CmdApiKeyCreate(Out& o, const std::string& name, int64_t user_id) {
  auto stub = v1::GatewayService::NewStub(o.client->channel());
  v1::CreateApiKeyRequest req;
  req.set_name(name);
  req.set_user_id(user_id);
  v1::CreateApiKeyResponse r;
  auto s = o.client->Call([&](ClientContext* c) { return stub->CreateApiKey(c, req, &r); });
  if (!s.ok()) return Fail(s);
  return Show(o, r, [&] {
    std::cout << "API key " << r.api_key().id() << " (" << r.api_key().name()
              << "); shown only now:\n"
              << r.key() << "\n";
  });
}

int CmdApiKeyList(Out& o, int64_t user_id) {
  auto stub = v1::GatewayService::NewStub(o.client->channel());
  v1::ListApiKeysRequest req;
  req.set_user_id(user_id);
  v1::ListApiKeysResponse r;
  auto s = o.client->Call([&](ClientContext* c) { return stub->ListApiKeys(c, req, &r); });
  if (!s.ok()) return Fail(s);
  return Show(o, r, [&] {
    std::vector<std::vector<std::string>> rows;
    for (const auto& k : r.api_keys()) {
      rows.push_back({std::to_string(k.id()), k.name(), k.prefix() + "…",
                      k.revoked() ? "revoked" : "active", Time(k.created_at())});
    }
    Table({"ID", "NAME", "PREFIX", "STATE", "CREATED"}, rows);
  });
}

int CmdApiKeyRevoke(Out& o, int64_t id) {
  auto stub = v1::GatewayService::NewStub(o.client->channel());
  v1::RevokeApiKeyRequest req;
  req.set_api_key_id(id);
  v1::RevokeApiKeyResponse r;
  auto s = o.client->Call([&](ClientContext* c) { return stub->RevokeApiKey(c, req, &r); });
  if (!s.ok()) return Fail(s);
  return Show(o, r, [&] { std::cout << "API key " << id << " revoked\n"; });
}

int CmdMemberAdd(Out& o, int64_t project, const std::string& user, const std::string& role) {
  auto stub = v1::GatewayService::NewStub(o.client->channel());
  v1::AddMemberRequest req;
  req.set_project_id(project);
  if (!user.empty() && user.find_first_not_of("0123456789") == std::string::npos) {
    req.set_user_id(std::stoll(user));
  } else {
    req.set_username(user);
  }
  req.set_role(ParseRole(role));
  v1::Member m;
  auto s = o.client->Call([&](ClientContext* c) { return stub->AddMember(c, req, &m); });
  if (!s.ok()) return Fail(s);
  return Show(o, m, [&] {
    std::cout << m.username() << " is now " << RoleText(m.role()) << " of project " << project
              << "\n";
  });
}

int CmdMemberRemove(Out& o, int64_t project, int64_t user_id) {
  auto stub = v1::GatewayService::NewStub(o.client->channel());
  v1::RemoveMemberRequest req;
  req.set_project_id(project);
  req.set_user_id(user_id);
  v1::RemoveMemberResponse r;
  auto s = o.client->Call([&](ClientContext* c) { return stub->RemoveMember(c, req, &r); });
  if (!s.ok()) return Fail(s);
  return Show(o, r, [&] { std::cout << "removed\n"; });
}

int CmdMemberList(Out& o, int64_t project) {
  auto stub = v1::GatewayService::NewStub(o.client->channel());
  v1::ListMembersRequest req;
  req.set_project_id(project);
  v1::ListMembersResponse r;
  auto s = o.client->Call([&](ClientContext* c) { return stub->ListMembers(c, req, &r); });
  if (!s.ok()) return Fail(s);
  return Show(o, r, [&] {
    std::vector<std::vector<std::string>> rows;
    for (const auto& m : r.members()) {
      rows.push_back({std::to_string(m.user_id()), m.username(), RoleText(m.role()),
                      m.owner() ? "owner" : ""});
    }
    Table({"USER", "USERNAME", "ROLE", ""}, rows);
  });
}

int CmdProjectCreate(Out& o, const ProjectSpec& spec) {
  auto stub = v1::LabelingService::NewStub(o.client->channel());
  v1::CreateProjectRequest req;
  req.set_name(spec.name);
  req.set_instructions(spec.instructions);
  req.set_data_kind(spec.data_kind);
  req.mutable_schema()->set_kind(spec.multi ? "multi" : "single");
  for (const auto& c : spec.classes) req.mutable_schema()->add_classes(c);
  req.set_judgements_per_item(spec.judgements);
  req.set_settings_json(spec.settings_json);
  v1::Project p;
  auto s = o.client->Call([&](ClientContext* c) { return stub->CreateProject(c, req, &p); });
  if (!s.ok()) return Fail(s);
  return Show(o, p,
              [&] { std::cout << "project " << p.id() << " (" << p.name() << ") created\n"; });
}

int CmdProjectList(Out& o) {
  auto stub = v1::LabelingService::NewStub(o.client->channel());
  v1::ListProjectsRequest req;
  req.set_page_size(500);
  v1::ListProjectsResponse r;
  auto s = o.client->Call([&](ClientContext* c) { return stub->ListProjects(c, req, &r); });
  if (!s.ok()) return Fail(s);
  return Show(o, r, [&] {
    std::vector<std::vector<std::string>> rows;
    for (const auto& p : r.projects()) {
      rows.push_back({std::to_string(p.id()), p.name(), p.data_kind(), p.schema().kind(),
                      Join(p.schema().classes()), p.status()});
    }
    Table({"ID", "NAME", "DATA", "LABELS", "CLASSES", "STATUS"}, rows);
  });
}

int CmdProjectShow(Out& o, int64_t id) {
  auto stub = v1::LabelingService::NewStub(o.client->channel());
  v1::GetProjectRequest req;
  req.set_project_id(id);
  v1::Project p;
  auto s = o.client->Call([&](ClientContext* c) { return stub->GetProject(c, req, &p); });
  if (!s.ok()) return Fail(s);
  return Show(o, p, [&] {
    std::cout << "project " << p.id() << ": " << p.name() << "\n"
              << "  data kind    " << p.data_kind() << " (feature dim " << p.feature_dim() << ")\n"
              << "  labels       " << p.schema().kind() << ": " << Join(p.schema().classes(), ", ")
              << "\n"
              << "  judgements   " << p.judgements_per_item() << " per item\n"
              << "  status       " << p.status() << "\n"
              << "  created by   " << p.created_by() << " at " << Time(p.created_at()) << "\n";
    if (!p.instructions().empty()) std::cout << "  instructions " << p.instructions() << "\n";
  });
}

int CmdStats(Out& o, int64_t project) {
  auto stub = v1::LabelingService::NewStub(o.client->channel());
  v1::GetStatsRequest req;
  req.set_project_id(project);
  v1::ProjectStats st;
  auto s = o.client->Call([&](ClientContext* c) { return stub->GetStats(c, req, &st); });
  if (!s.ok()) return Fail(s);
  return Show(o, st, [&] {
    std::cout << "items " << st.total() << ": " << st.labeled() << " labeled, " << st.unlabeled()
              << " unlabeled, " << st.under_lease() << " leased; " << st.labels_last_hour()
              << " labels in the last hour\n\n";
    std::vector<std::vector<std::string>> rows;
    for (const auto& c : st.per_class())
      rows.push_back({c.class_name(), std::to_string(c.items())});
    Table({"CLASS", "ITEMS"}, rows);
    if (st.per_annotator_size() > 0) {
      std::cout << "\n";
      rows.clear();
      for (const auto& a : st.per_annotator()) {
        rows.push_back({a.annotator(), std::to_string(a.labels()), Fmt(a.median_seconds(), 1)});
      }
      Table({"ANNOTATOR", "LABELS", "MEDIAN S"}, rows);
    }
  });
}

int CmdUpload(Out& o, const UploadSpec& spec) {
  std::ifstream f(spec.file, std::ios::binary);
  if (!f) {
    std::cerr << "labelctl: cannot read " << spec.file << "\n";
    return 2;
  }
  f.seekg(0, std::ios::end);
  const int64_t size = f.tellg();
  f.seekg(0);
  std::string format = spec.format;
  if (format.empty()) {
    const auto dot = spec.file.rfind('.');
    format = dot == std::string::npos ? "" : spec.file.substr(dot + 1);
  }
  v1::UploadFormat fmt = format == "csv"     ? v1::UPLOAD_FORMAT_CSV
                         : format == "jsonl" ? v1::UPLOAD_FORMAT_JSONL
                         : format == "zip"   ? v1::UPLOAD_FORMAT_ZIP_IMAGES
                                             : v1::UPLOAD_FORMAT_UNSPECIFIED;
  if (fmt == v1::UPLOAD_FORMAT_UNSPECIFIED) {
    std::cerr << "labelctl: --format: csv, jsonl or zip\n";
    return 2;
  }
  auto stub = v1::LabelingIngestService::NewStub(o.client->channel());
  v1::UploadResponse resp;
  ProgressBar bar("upload", size);
  grpc::ClientContext ctx;
  o.client->Prepare(&ctx, 0);
  auto writer = stub->Upload(&ctx, &resp);
  v1::UploadRequest head;
  auto* h = head.mutable_header();
  h->set_project_id(spec.project);
  h->set_format(fmt);
  h->set_file_name(spec.file);
  h->set_mode(spec.commit_good_rows ? v1::UPLOAD_MODE_COMMIT_GOOD_ROWS
                                    : v1::UPLOAD_MODE_ALL_OR_NOTHING);
  auto* m = h->mutable_mapping();
  m->set_external_id_column(spec.external_id_column);
  m->set_text_column(spec.text_column);
  m->set_label_column(spec.label_column);
  m->set_sample_ts_column(spec.timestamp_column);
  for (const auto& c : spec.feature_columns) m->add_feature_columns(c);
  bool ok = writer->Write(head);
  int64_t sent = 0;
  int64_t rows = 0;
  std::string buf(spec.chunk_bytes, '\0');
  while (ok && f) {
    f.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto n = f.gcount();
    if (n <= 0) break;
    v1::UploadRequest chunk;
    chunk.set_chunk(buf.data(), static_cast<size_t>(n));
    ok = writer->Write(chunk);
    sent += n;
    if (fmt != v1::UPLOAD_FORMAT_ZIP_IMAGES) {
      rows += std::count(buf.data(), buf.data() + n, '\n');
    }
    bar.Update(sent, fmt != v1::UPLOAD_FORMAT_ZIP_IMAGES ? rows : -1);
  }
  writer->WritesDone();
  auto s = writer->Finish();
  bar.Finish();
  if (!s.ok()) return Fail(s);
  return Show(o, resp, [&] {
    std::cout << "read " << resp.rows_read() << " rows: " << resp.items_inserted() << " new items, "
              << resp.duplicates() << " duplicates, " << resp.labels_imported()
              << " labels imported, " << resp.rows_rejected() << " rejected\n";
    for (const auto& r : resp.rejected()) {
      std::cout << "  line " << r.line() << (r.entry().empty() ? "" : " " + r.entry()) << ": "
                << r.reason() << "\n";
    }
  });
}

int CmdTrainWatch(Out& o, int64_t job) {
  auto stub = v1::TrainingService::NewStub(o.client->channel());
  grpc::ClientContext ctx;
  o.client->Prepare(&ctx, 0);
  v1::WatchTrainingRequest req;
  req.set_job_id(job);
  auto reader = stub->WatchTraining(&ctx, req);
  v1::TrainingProgress p;
  int64_t model_id = 0;
  v1::TrainingJobState last = v1::TRAINING_JOB_STATE_UNSPECIFIED;
  std::string message;
  while (reader->Read(&p)) {
    if (o.json) {
      std::cout << Json(p) << "\n" << std::flush;
    } else if (p.has_epoch_metrics()) {
      const auto& e = p.epoch_metrics();
      const int width = 20;
      const int fill = p.epochs() > 0 ? width * p.epoch() / p.epochs() : 0;
      std::cout << "epoch " << e.epoch() << "/" << p.epochs() << " ["
                << std::string(static_cast<size_t>(fill), '#')
                << std::string(static_cast<size_t>(width - fill), '.') << "] loss "
                << Fmt(e.train_loss()) << " acc " << Fmt(e.train_accuracy()) << "  val loss "
                << Fmt(e.val_loss()) << " val acc " << Fmt(e.val_accuracy()) << "\n"
                << std::flush;
    } else if (p.state() != last) {
      std::cout << "job " << p.job_id() << ": " << StateName(p.state())
                << (p.message().empty() ? "" : " (" + p.message() + ")") << "\n"
                << std::flush;
    }
    last = p.state();
    if (p.model_id() != 0) model_id = p.model_id();
    message = p.message();
  }
  auto s = reader->Finish();
  if (!s.ok()) return Fail(s);
  if (!o.json && model_id != 0) std::cout << "model " << model_id << " ready\n";
  return last == v1::TRAINING_JOB_STATE_SUCCEEDED ? 0 : 1;
}

int CmdTrainStart(Out& o, int64_t project, int epochs, const std::string& model, bool follow) {
  auto stub = v1::TrainingService::NewStub(o.client->channel());
  v1::StartTrainingRequest req;
  req.set_project_id(project);
  if (epochs > 0) req.mutable_spec()->set_epochs(epochs);
  if (model == "mlp") req.mutable_spec()->set_model_type(v1::MODEL_TYPE_MLP);
  if (model == "softmax") req.mutable_spec()->set_model_type(v1::MODEL_TYPE_SOFTMAX);
  v1::StartTrainingResponse r;
  auto s = o.client->Call([&](ClientContext* c) { return stub->StartTraining(c, req, &r); });
  if (!s.ok()) return Fail(s);
  Show(o, r, [&] { std::cout << "training job " << r.job_id() << " queued\n"; });
  return follow ? CmdTrainWatch(o, r.job_id()) : 0;
}

int CmdTrainList(Out& o, int64_t project) {
  auto stub = v1::TrainingService::NewStub(o.client->channel());
  v1::ListTrainingJobsRequest req;
  req.set_project_id(project);
  v1::ListTrainingJobsResponse r;
  auto s = o.client->Call([&](ClientContext* c) { return stub->ListTrainingJobs(c, req, &r); });
  if (!s.ok()) return Fail(s);
  return Show(o, r, [&] {
    std::vector<std::vector<std::string>> rows;
    for (const auto& j : r.jobs()) {
      rows.push_back({std::to_string(j.job_id()), StateName(j.state()),
                      std::to_string(j.epoch()) + "/" + std::to_string(j.epochs()), j.trigger(),
                      j.model_id() != 0 ? std::to_string(j.model_id()) : "", Time(j.created_at()),
                      j.message()});
    }
    Table({"JOB", "STATE", "EPOCH", "TRIGGER", "MODEL", "CREATED", "MESSAGE"}, rows);
  });
}

int CmdTrainCancel(Out& o, int64_t job) {
  auto stub = v1::TrainingService::NewStub(o.client->channel());
  v1::CancelTrainingRequest req;
  req.set_job_id(job);
  v1::TrainingJob j;
  auto s = o.client->Call([&](ClientContext* c) { return stub->CancelTraining(c, req, &j); });
  if (!s.ok()) return Fail(s);
  return Show(o, j,
              [&] { std::cout << "job " << j.job_id() << ": " << StateName(j.state()) << "\n"; });
}

int CmdModelsList(Out& o, int64_t project) {
  auto stub = v1::TrainingService::NewStub(o.client->channel());
  v1::ListModelsRequest req;
  req.set_project_id(project);
  v1::ListModelsResponse r;
  auto s = o.client->Call([&](ClientContext* c) { return stub->ListModels(c, req, &r); });
  if (!s.ok()) return Fail(s);
  return Show(o, r, [&] {
    std::vector<std::vector<std::string>> rows;
    for (const auto& m : r.models()) {
      rows.push_back({std::to_string(m.model_id()), std::to_string(m.version()), m.model_type(),
                      std::to_string(m.labeled_items()), Fmt(m.metrics().accuracy()),
                      Fmt(m.metrics().macro_f1()), m.metrics().evaluated_on(),
                      m.predictions_ready() ? "yes" : "no", Time(m.created_at())});
    }
    Table({"MODEL", "VERSION", "TYPE", "LABELS", "ACCURACY", "MACRO F1", "ON", "PREDICTIONS",
           "CREATED"},
          rows);
  });
}

int CmdModelShow(Out& o, int64_t model) {
  auto stub = v1::TrainingService::NewStub(o.client->channel());
  v1::GetModelRequest req;
  req.set_model_id(model);
  v1::ModelInfo m;
  auto s = o.client->Call([&](ClientContext* c) { return stub->GetModel(c, req, &m); });
  if (!s.ok()) return Fail(s);
  return Show(o, m, [&] {
    const auto& mt = m.metrics();
    std::cout << "model " << m.model_id() << " (project " << m.project_id() << ", version "
              << m.version() << ", " << m.model_type() << ", job " << m.job_id() << ")\n"
              << "accuracy " << Fmt(mt.accuracy()) << "  macro P/R/F1 " << Fmt(mt.macro_precision())
              << "/" << Fmt(mt.macro_recall()) << "/" << Fmt(mt.macro_f1()) << " on "
              << mt.evaluated_on() << " (" << mt.train_items() << " train, "
              << mt.validation_items() << " validation items)\n\n";
    std::vector<std::vector<std::string>> rows;
    for (const auto& c : mt.per_class()) {
      rows.push_back({c.class_name(), Fmt(c.precision()), Fmt(c.recall()), Fmt(c.f1()),
                      std::to_string(c.support())});
    }
    Table({"CLASS", "PRECISION", "RECALL", "F1", "SUPPORT"}, rows);
    if (mt.confusion_size() > 0) {
      std::cout << "\nconfusion (rows: true class, columns: predicted)\n";
      rows.clear();
      std::vector<std::string> header = {""};
      for (const auto& c : m.classes()) header.push_back(c);
      for (int i = 0; i < mt.confusion_size(); ++i) {
        std::vector<std::string> row = {i < m.classes_size() ? m.classes(i) : std::to_string(i)};
        for (auto v : mt.confusion(i).counts()) row.push_back(std::to_string(v));
        rows.push_back(row);
      }
      Table(header, rows);
    }
  });
}

int CmdRankInfo(Out& o, int64_t project) {
  auto stub = v1::RankingService::NewStub(o.client->channel());
  v1::RankInfoRequest req;
  req.set_project_id(project);
  v1::RankInfoResponse r;
  auto s = o.client->Call([&](ClientContext* c) { return stub->RankInfo(c, req, &r); });
  if (!s.ok()) return Fail(s);
  return Show(o, r, [&] {
    if (!r.has_order()) {
      std::cout << "no ranked order yet (no model)\n";
      return;
    }
    std::cout << "order by " << r.strategy() << " from model " << r.model_id() << " (version "
              << r.model_version() << "), built " << Time(r.built_at()) << ": " << r.live_items()
              << " of " << r.items() << " items still unlabeled\n";
  });
}

int CmdRankStrategy(Out& o, int64_t project, const std::string& strategy) {
  auto stub = v1::RankingService::NewStub(o.client->channel());
  v1::SetStrategyRequest req;
  req.set_project_id(project);
  req.set_strategy(strategy);
  v1::SetStrategyResponse r;
  auto s = o.client->Call([&](ClientContext* c) { return stub->SetStrategy(c, req, &r); });
  if (!s.ok()) return Fail(s);
  return Show(o, r, [&] { std::cout << "strategy " << r.strategy() << "\n"; });
}

int CmdDownloadStatus(Out& o, int64_t id) {
  auto stub = v1::DlManagerService::NewStub(o.client->channel());
  v1::GetDownloadRequest req;
  req.set_download_id(id);
  v1::Download d;
  auto s = o.client->Call([&](ClientContext* c) { return stub->GetDownload(c, req, &d); });
  if (!s.ok()) return Fail(s);
  return Show(o, d, [&] {
    std::cout << "download " << d.download_id() << ": " << DownloadStatusName(d.status())
              << (d.phase().empty() ? "" : " (" + d.phase() + ")") << ", "
              << HumanBytes(static_cast<double>(d.size_bytes()))
              << (d.message().empty() ? "" : ": " + d.message()) << "\n";
  });
}

int CmdDownloadFetch(Out& o, int64_t id, const std::string& out) {
  auto stub = v1::DlManagerService::NewStub(o.client->channel());
  const std::string path = out.empty() ? "download-" + std::to_string(id) + ".zip" : out;
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) {
    std::cerr << "labelctl: cannot write " << path << "\n";
    return 2;
  }
  grpc::ClientContext ctx;
  o.client->Prepare(&ctx, 0);
  v1::FetchArchiveRequest req;
  req.set_download_id(id);
  auto reader = stub->FetchArchive(&ctx, req);
  v1::ArchiveChunk chunk;
  int64_t got = 0;
  std::unique_ptr<ProgressBar> bar;
  std::string sha;
  while (reader->Read(&chunk)) {
    if (!bar) bar = std::make_unique<ProgressBar>("fetch", chunk.total_size());
    f.write(chunk.data().data(), static_cast<std::streamsize>(chunk.data().size()));
    got += static_cast<int64_t>(chunk.data().size());
    sha = chunk.sha256();
    bar->Update(got);
  }
  auto s = reader->Finish();
  if (bar) bar->Finish();
  if (!s.ok()) return Fail(s);
  if (o.json) {
    nlohmann::json j = {{"path", path}, {"bytes", got}, {"sha256", sha}};
    std::cout << j.dump() << "\n";
  } else {
    std::cout << "wrote " << path << " (" << HumanBytes(static_cast<double>(got)) << ", sha256 "
              << sha << ")\n";
  }
  return 0;
}

int CmdDownloadRequest(Out& o, int64_t project, int64_t model, bool wait, const std::string& out) {
  auto stub = v1::DlManagerService::NewStub(o.client->channel());
  v1::RequestDownloadRequest req;
  req.set_project_id(project);
  req.set_model_id(model);
  v1::RequestDownloadResponse r;
  auto s = o.client->Call([&](ClientContext* c) { return stub->RequestDownload(c, req, &r); });
  if (!s.ok()) return Fail(s);
  Show(o, r, [&] {
    std::cout << "download " << r.download().download_id() << " "
              << (r.created() ? "requested" : "already requested") << "\n";
  });
  if (!wait) return 0;
  const int64_t id = r.download().download_id();
  // Wait for the archive: poll its status (the WatchProject stream would also tell).
  for (;;) {
    v1::GetDownloadRequest g;
    g.set_download_id(id);
    v1::Download d;
    s = o.client->Call([&](ClientContext* c) { return stub->GetDownload(c, g, &d); });
    if (!s.ok()) return Fail(s);
    if (d.status() == v1::DOWNLOAD_STATUS_AVAILABLE) break;
    if (d.status() == v1::DOWNLOAD_STATUS_FAILED) {
      std::cerr << "labelctl: download " << id << " failed: " << d.message() << "\n";
      return 1;
    }
    if (!o.json) {
      std::cerr << "\r\033[Kbuilding: " << d.phase() << " " << d.rows_written() << " rows"
                << std::flush;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  if (!o.json) std::cerr << "\r\033[K";
  return CmdDownloadFetch(o, id, out);
}

int CmdDownloadList(Out& o, int64_t project) {
  auto stub = v1::DlManagerService::NewStub(o.client->channel());
  v1::ListDownloadsRequest req;
  req.set_project_id(project);
  v1::ListDownloadsResponse r;
  auto s = o.client->Call([&](ClientContext* c) { return stub->ListDownloads(c, req, &r); });
  if (!s.ok()) return Fail(s);
  return Show(o, r, [&] {
    std::vector<std::vector<std::string>> rows;
    for (const auto& d : r.downloads()) {
      rows.push_back({std::to_string(d.download_id()), DownloadStatusName(d.status()),
                      std::to_string(d.model_id()), HumanBytes(static_cast<double>(d.size_bytes())),
                      d.requested_by(), Time(d.created_at())});
    }
    Table({"ID", "STATUS", "MODEL", "SIZE", "BY", "CREATED"}, rows);
  });
}

int CmdEvents(Out& o, int64_t project) {
  auto stub = v1::GatewayService::NewStub(o.client->channel());
  grpc::ClientContext ctx;
  o.client->Prepare(&ctx, 0);
  v1::WatchProjectRequest req;
  req.set_project_id(project);
  auto reader = stub->WatchProject(&ctx, req);
  v1::ProjectEvent ev;
  while (reader->Read(&ev)) {
    if (o.json) {
      std::cout << ev.json() << "\n" << std::flush;
    } else {
      std::cout << Time(ev.received_at()) << "  " << ev.type() << "  " << ev.json() << "\n"
                << std::flush;
    }
  }
  return Fail(reader->Finish());
}

namespace {

// Reads one key press without Enter (raw mode when stdin is a terminal).
int ReadKey() {
  termios old{};
  const bool tty = isatty(STDIN_FILENO) == 1 && tcgetattr(STDIN_FILENO, &old) == 0;
  if (tty) {
    termios raw = old;
    raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    tcsetattr(STDIN_FILENO, TCSANOW, &raw);
  }
  unsigned char c = 0;
  const auto n = read(STDIN_FILENO, &c, 1);
  if (tty) tcsetattr(STDIN_FILENO, TCSANOW, &old);
  return n == 1 ? c : -1;
}

const char kKeys[] = "123456789abcdefghijklmnoptuvwxyz";  // no q (quit), r, s (skip)

void ShowItem(const v1::Item& item) {
  std::cout << "\n\033[1mitem " << item.id() << "\033[0m (" << item.external_id() << ")\n";
  if (!item.text().empty()) std::cout << item.text() << "\n";
  if (!item.row_json().empty()) {
    try {
      auto j = nlohmann::json::parse(item.row_json());
      for (auto it = j.begin(); it != j.end(); ++it) {
        std::cout << "  " << it.key() << ": " << it.value().dump() << "\n";
      }
    } catch (const std::exception&) {
      std::cout << item.row_json() << "\n";
    }
  }
  if (!item.image().empty()) {
    std::cout << "[" << item.image_format() << " image, " << item.image().size()
              << " bytes: not shown in the terminal]\n";
  }
}

}  // namespace

int CmdLabel(Out& o, int64_t project) {
  auto lab = v1::LabelingService::NewStub(o.client->channel());
  v1::GetProjectRequest gp;
  gp.set_project_id(project);
  v1::Project p;
  auto s = o.client->Call([&](ClientContext* c) { return lab->GetProject(c, gp, &p); });
  if (!s.ok()) return Fail(s);
  const auto& classes = p.schema().classes();
  const bool multi = p.schema().kind() == "multi";
  if (classes.size() > static_cast<int>(sizeof(kKeys) - 1)) {
    std::cerr << "labelctl: too many classes for the terminal mode\n";
    return 2;
  }
  std::cout << "labeling project " << p.id() << " (" << p.name() << ")\n";
  if (!p.instructions().empty()) std::cout << p.instructions() << "\n";
  int done = 0;
  for (;;) {
    v1::ClaimNextRequest cr;
    cr.set_project_id(project);
    cr.set_n(1);
    cr.set_with_payload(true);
    v1::ClaimNextResponse claimed;
    s = o.client->Call([&](ClientContext* c) { return lab->ClaimNext(c, cr, &claimed); });
    if (!s.ok()) return Fail(s);
    if (claimed.items_size() == 0) {
      std::cout << "no items left to label (" << done << " labeled in this session)\n";
      return 0;
    }
    const auto& ci = claimed.items(0);
    ShowItem(ci.item());
    for (int i = 0; i < classes.size(); ++i) {
      std::cout << "  [" << kKeys[i] << "] " << classes[i] << "\n";
    }
    std::cout << (multi ? "  keys toggle classes, Enter submits; " : "  ")
              << "[s] skip  [q] quit\n> " << std::flush;
    const auto start = std::chrono::steady_clock::now();
    std::set<int> chosen;
    bool skip = false;
    bool quit = false;
    for (;;) {
      const int k = ReadKey();
      if (k < 0 || k == 'q') {
        quit = true;
        break;
      }
      if (k == 's') {
        skip = true;
        break;
      }
      if (multi && (k == '\n' || k == '\r')) {
        if (!chosen.empty()) break;
        continue;
      }
      const char* pos = std::strchr(kKeys, k);
      if (pos == nullptr || k == 0) continue;
      const int idx = static_cast<int>(pos - kKeys);
      if (idx >= classes.size()) continue;
      if (!multi) {
        chosen = {idx};
        break;
      }
      if (!chosen.erase(idx)) chosen.insert(idx);
      std::cout << "\r\033[K> ";
      for (int c : chosen) std::cout << classes[c] << " ";
      std::cout << std::flush;
    }
    std::cout << "\n";
    if (quit) {
      v1::ReleaseLeaseRequest rl;
      rl.set_item_id(ci.lease().item_id());
      rl.set_lease_token(ci.lease().token());
      v1::ReleaseLeaseResponse rr;
      (void)o.client->Call([&](ClientContext* c) { return lab->ReleaseLease(c, rl, &rr); });
      std::cout << done << " labeled in this session\n";
      return 0;
    }
    if (skip) {
      v1::SkipRequest sk;
      sk.set_item_id(ci.lease().item_id());
      sk.set_lease_token(ci.lease().token());
      sk.set_reason("skipped in labelctl");
      v1::SkipResponse sr;
      s = o.client->Call([&](ClientContext* c) { return lab->Skip(c, sk, &sr); });
      if (!s.ok()) return Fail(s);
      continue;
    }
    v1::SubmitLabelRequest sub;
    sub.set_item_id(ci.lease().item_id());
    sub.set_lease_token(ci.lease().token());
    for (int c : chosen) sub.add_classes(classes[c]);
    sub.set_seconds_spent(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    v1::SubmitLabelResponse sr;
    s = o.client->Call([&](ClientContext* c) { return lab->SubmitLabel(c, sub, &sr); });
    if (!s.ok()) return Fail(s);
    ++done;
    std::cout << "✓ " << Join(sub.classes(), ", ") << "\n";
  }
}

}  // namespace labelloop::labelctl
