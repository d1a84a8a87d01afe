// Projects, label schemas, bad input, listing, items and completion, end to end over
// gRPC against the real labelloop-labeling binary.
#include <gtest/gtest.h>

#include "tests/e2e/labeling/labeling_harness.hpp"

namespace labelloop::e2e {
namespace {

#define START_OR_SKIP(h, ...) \
  if (!(h).Start(__VA_ARGS__)) GTEST_SKIP() << "needs tests/run (LABELLOOP_TEST_PG_URL, _REDIS_*)"

v1::CreateProjectRequest GoodProject() {
  v1::CreateProjectRequest r;
  r.set_name("Birds");
  r.set_instructions("Pick the species.");
  r.set_data_kind("image");
  r.mutable_schema()->set_kind("single");
  r.mutable_schema()->add_classes("sparrow");
  r.mutable_schema()->add_classes("finch");
  r.set_settings_json(R"({"strategy":"entropy","retrain_every":50})");
  r.set_validators_json(R"({"image":{"max_width":4096}})");
  r.set_created_by("alice");
  return r;
}

TEST(LabelingProjects, CreateGetListUpdateArchive) {
  LabelingHarness h;
  START_OR_SKIP(h);
  auto& stub = h.stub();
  v1::Project p;
  {
    grpc::ClientContext ctx;
    auto st = stub.CreateProject(&ctx, GoodProject(), &p);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  EXPECT_GT(p.id(), 0);
  EXPECT_EQ(p.name(), "Birds");
  EXPECT_EQ(p.data_kind(), "image");
  EXPECT_EQ(p.schema().kind(), "single");
  EXPECT_EQ(p.schema().classes_size(), 2);
  EXPECT_EQ(p.judgements_per_item(), 1);
  EXPECT_EQ(p.status(), "active");
  EXPECT_NE(p.settings_json().find("\"retrain_every\": 50"), std::string::npos)
      << p.settings_json();
  // Published view other services read.
  EXPECT_EQ(h.Count("SELECT count(*) FROM labeling.v_projects WHERE settings->>'strategy' = "
                    "'entropy' AND project_id = " +
                    std::to_string(p.id())),
            1);

  for (int i = 0; i < 4; ++i) {
    auto r = GoodProject();
    r.set_name("more " + std::to_string(i));
    grpc::ClientContext ctx;
    v1::Project q;
    ASSERT_TRUE(stub.CreateProject(&ctx, r, &q).ok());
  }
  // Pages of two: 5 projects in 3 pages.
  std::vector<int64_t> seen;
  std::string token;
  int pages = 0;
  do {
    v1::ListProjectsRequest lr;
    lr.set_page_size(2);
    lr.set_page_token(token);
    v1::ListProjectsResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub.ListProjects(&ctx, lr, &resp).ok());
    for (const auto& q : resp.projects()) seen.push_back(q.id());
    token = resp.next_page_token();
    ++pages;
  } while (!token.empty() && pages < 10);
  EXPECT_EQ(seen.size(), 5u);
  EXPECT_EQ(pages, 3);

  v1::UpdateProjectRequest up;
  up.set_project_id(p.id());
  up.set_name("Birds of Europe");
  up.mutable_schema()->set_kind("single");
  for (const char* c : {"sparrow", "finch", "robin"}) up.mutable_schema()->add_classes(c);
  v1::Project updated;
  {
    grpc::ClientContext ctx;
    auto st = stub.UpdateProject(&ctx, up, &updated);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  EXPECT_EQ(updated.name(), "Birds of Europe");
  EXPECT_EQ(updated.schema().classes_size(), 3);
  EXPECT_EQ(updated.instructions(), "Pick the species.");  // unset: unchanged

  v1::ArchiveProjectRequest ar;
  ar.set_project_id(p.id());
  v1::Project archived;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub.ArchiveProject(&ctx, ar, &archived).ok());
  }
  EXPECT_EQ(archived.status(), "archived");
  v1::ListProjectsRequest lr;
  v1::ListProjectsResponse resp;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub.ListProjects(&ctx, lr, &resp).ok());
  }
  EXPECT_EQ(resp.projects_size(), 4);  // archived ones hidden by default
  // An archived project hands nothing out.
  v1::ClaimNextResponse claim;
  auto st = Claim(stub, p.id(), "ann", 1, &claim);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(st.error_message().find("is archived"), std::string::npos) << st.error_message();
}

struct BadCase {
  std::function<void(v1::CreateProjectRequest&)> mutate;
  std::string message;
};

TEST(LabelingProjects, BadInputNamesTheField) {
  LabelingHarness h;
  START_OR_SKIP(h);
  auto& stub = h.stub();
  const std::vector<BadCase> cases = {
      {[](auto& r) { r.set_name(""); }, "name: must not be empty"},
      {[](auto& r) { r.set_data_kind("video"); },
       "data_kind: must be one of tabular, text, image (got 'video')"},
      {[](auto& r) { r.clear_schema(); }, "schema: required (kind and classes)"},
      {[](auto& r) { r.mutable_schema()->set_kind("many"); },
       "schema.kind: must be 'single' or 'multi' (got 'many')"},
      {[](auto& r) { r.mutable_schema()->clear_classes(); },
       "schema.classes: at least one class is required"},
      {[](auto& r) { r.mutable_schema()->add_classes("finch"); },
       "schema.classes: class 'finch' is listed twice"},
      {[](auto& r) { r.set_judgements_per_item(51); },
       "judgements_per_item: must be between 1 and 50 (got 51)"},
      {[](auto& r) { r.set_validators_json("{not json"); }, "validators_json: not valid JSON"},
      {[](auto& r) { r.set_settings_json("[]"); }, "settings_json: must be a JSON object"},
      {[](auto& r) { r.set_validators_json(R"({"image":"big"})"); },
       "validators_json.image: must be an object"},
      {[](auto& r) { r.set_settings_json(R"({"retrain_every":-5})"); },
       "settings_json.retrain_every: must be a positive integer"},
  };
  for (const auto& c : cases) {
    auto req = GoodProject();
    c.mutate(req);
    grpc::ClientContext ctx;
    v1::Project p;
    auto st = stub.CreateProject(&ctx, req, &p);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.message;
    EXPECT_EQ(st.error_message(), c.message);
  }
  EXPECT_EQ(h.Count("SELECT count(*) FROM labeling.projects"), 0);

  // Unknown ids → NOT_FOUND; non-positive ids → INVALID_ARGUMENT.
  {
    v1::GetProjectRequest g;
    g.set_project_id(424242);
    v1::Project p;
    grpc::ClientContext ctx;
    auto st = stub.GetProject(&ctx, g, &p);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_EQ(st.error_message(), "project_id: no project 424242");
  }
  {
    v1::GetProjectRequest g;
    v1::Project p;
    grpc::ClientContext ctx;
    auto st = stub.GetProject(&ctx, g, &p);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(st.error_message(), "project_id: must be a positive id (got 0)");
  }
  v1::ClaimNextResponse claim;
  auto st = Claim(stub, 424242, "ann", 1, &claim);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(st.error_message(), "project_id: no project 424242");
  st = Claim(stub, 1, "", 1, &claim);
  EXPECT_EQ(st.error_message(), "annotator: must not be empty");
  st = Claim(stub, 1, "ann", 500, &claim);
  EXPECT_EQ(st.error_message(), "n: must be between 1 and 100 (got 500)");
  {
    v1::ListProjectsRequest lr;
    lr.set_page_token("garbage!");
    v1::ListProjectsResponse resp;
    grpc::ClientContext ctx;
    auto s2 = stub.ListProjects(&ctx, lr, &resp);
    EXPECT_EQ(s2.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(s2.error_message(), "page_token: not a token returned by this call");
  }
}

TEST(LabelingProjects, ClassInUseCannotBeRenamedOrDropped) {
  LabelingHarness h;
  START_OR_SKIP(h);
  auto& stub = h.stub();
  auto p = h.CreateProject({"cat", "dog", "bird"});
  h.InsertItems(p.id(), 3);
  v1::ClaimNextResponse claim;
  ASSERT_TRUE(Claim(stub, p.id(), "ann", 3, &claim).ok());
  ASSERT_EQ(claim.items_size(), 3);
  ASSERT_TRUE(Submit(stub, claim.items(0).lease(), {"cat"}).ok());
  ASSERT_TRUE(Submit(stub, claim.items(1).lease(), {"cat"}).ok());

  auto update = [&](const std::vector<std::string>& classes, const std::string& kind = "single") {
    v1::UpdateProjectRequest up;
    up.set_project_id(p.id());
    up.mutable_schema()->set_kind(kind);
    for (const auto& c : classes) up.mutable_schema()->add_classes(c);
    v1::Project out;
    grpc::ClientContext ctx;
    return stub.UpdateProject(&ctx, up, &out);
  };
  // Rename cat → kitty: refused, naming the class and how many labels use it.
  auto st = update({"kitty", "dog", "bird"});
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(st.error_message(),
            "schema.classes: class 'cat' is used by 2 labels and cannot be renamed or dropped "
            "(classes may only be added while in use)");
  // Dropping an unused class and adding classes are fine.
  st = update({"cat", "dog", "fish", "owl"});
  EXPECT_TRUE(st.ok()) << st.error_message();
  // Changing the kind once labels exist is refused.
  st = update({"cat", "dog", "fish", "owl"}, "multi");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(st.error_message(),
            "schema.kind: cannot change once the project has labels (it has 2)");
  // A label with a class the schema no longer has is refused.
  v1::SubmitLabelResponse r;
  st = Submit(stub, claim.items(2).lease(), {"bird"}, &r);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(st.error_message(),
            "classes: unknown class 'bird' (the project's classes: cat, dog, fish, owl)");
  st = Submit(stub, claim.items(2).lease(), {"fish", "owl"}, &r);
  EXPECT_EQ(st.error_message(),
            "classes: this project is single-choice: give exactly one class (got 2)");
  ASSERT_TRUE(Submit(stub, claim.items(2).lease(), {"owl"}, &r).ok());
}

TEST(LabelingProjects, SubmitBadInputAndUnknownLeases) {
  LabelingHarness h;
  START_OR_SKIP(h);
  auto& stub = h.stub();
  auto p = h.CreateProject({"a", "b"}, "multi");
  auto ids = h.InsertItems(p.id(), 2);
  v1::ClaimNextResponse claim;
  ASSERT_TRUE(Claim(stub, p.id(), "ann", 1, &claim).ok());
  const auto lease = claim.items(0).lease();

  v1::Lease bad = lease;
  bad.set_token("not-a-token");
  EXPECT_EQ(Submit(stub, bad, {"a"}).error_message(),
            "lease_token: not a lease token (a uuid returned by ClaimNext)");
  bad.set_token("00000000-0000-4000-8000-000000000000");
  auto st = Submit(stub, bad, {"a"});
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(st.error_message(),
            "lease_token: no lease with this token on item " + std::to_string(lease.item_id()));
  // The token of one item used on another.
  bad = lease;
  bad.set_item_id(ids[1]);
  EXPECT_EQ(Submit(stub, bad, {"a"}).error_code(), grpc::StatusCode::NOT_FOUND);
  bad.set_item_id(987654321);
  st = Submit(stub, bad, {"a"});
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(st.error_message(), "item_id: no item 987654321");
  EXPECT_EQ(Submit(stub, lease, {}).error_message(), "classes: at least one class is required");
  EXPECT_EQ(Submit(stub, lease, {"a", "a"}).error_message(), "classes: class 'a' is given twice");
  EXPECT_EQ(Submit(stub, lease, {"a"}, nullptr, -3).error_message(),
            "seconds_spent: must be between 0 and 86400");
  {
    v1::SubmitLabelRequest req;
    req.set_item_id(lease.item_id());
    req.set_lease_token(lease.token());
    req.add_classes("a");
    req.set_annotator("mallory");
    v1::SubmitLabelResponse resp;
    grpc::ClientContext ctx;
    st = stub.SubmitLabel(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_EQ(st.error_message(), "annotator: the lease belongs to another annotator");
  }
  // Nothing was stored by the refused calls; a good submit of a set works.
  EXPECT_EQ(h.Count("SELECT count(*) FROM labeling.labels"), 0);
  v1::SubmitLabelResponse r;
  ASSERT_TRUE(Submit(stub, lease, {"b", "a"}, &r).ok());
  EXPECT_EQ(std::vector<std::string>(r.consensus().begin(), r.consensus().end()),
            (std::vector<std::string>{"a", "b"}));
  {
    v1::SkipRequest sk;
    sk.set_item_id(lease.item_id());
    sk.set_lease_token(lease.token());
    sk.set_reason(std::string(1001, 'x'));
    v1::SkipResponse sr;
    grpc::ClientContext ctx;
    EXPECT_EQ(stub.Skip(&ctx, sk, &sr).error_message(), "reason: at most 1000 characters");
  }
}

TEST(LabelingProjects, ListItemsGetItemAndComplete) {
  LabelingHarness h;
  START_OR_SKIP(h);
  auto& stub = h.stub();
  auto p = h.CreateProject({"x", "y"});
  auto ids = h.InsertItems(p.id(), 25);
  // ann labels the first 10: x for even ids, y for odd.
  v1::ClaimNextResponse claim;
  ASSERT_TRUE(Claim(stub, p.id(), "ann", 10, &claim).ok());
  ASSERT_EQ(claim.items_size(), 10);
  for (const auto& it : claim.items()) {
    ASSERT_TRUE(Submit(stub, it.lease(), {it.lease().item_id() % 2 == 0 ? "x" : "y"}).ok());
  }

  v1::CompleteProjectRequest cr;
  cr.set_project_id(p.id());
  v1::Project out;
  {
    grpc::ClientContext ctx;
    auto st = stub.CompleteProject(&ctx, cr, &out);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_EQ(st.error_message(),
              "15 of 25 items are still unlabeled; a project can be completed only when every "
              "item has its label");
  }

  auto list_all = [&](v1::ListItemsRequest req) {
    std::vector<int64_t> got;
    for (int pages = 0; pages < 100; ++pages) {
      v1::ListItemsResponse resp;
      grpc::ClientContext ctx;
      auto st = stub.ListItems(&ctx, req, &resp);
      EXPECT_TRUE(st.ok()) << st.error_message();
      for (const auto& it : resp.items()) got.push_back(it.id());
      if (resp.next_page_token().empty()) break;
      req.set_page_token(resp.next_page_token());
    }
    return got;
  };
  v1::ListItemsRequest lr;
  lr.set_project_id(p.id());
  lr.set_page_size(4);
  EXPECT_EQ(list_all(lr), ids);
  lr.set_status("unlabeled");
  EXPECT_EQ(list_all(lr), std::vector<int64_t>(ids.begin() + 10, ids.end()));
  lr.set_status("labeled");
  lr.set_class_name("x");
  std::vector<int64_t> even;
  for (int i = 0; i < 10; ++i) {
    if (ids[i] % 2 == 0) even.push_back(ids[i]);
  }
  EXPECT_EQ(list_all(lr), even);
  lr.clear_class_name();
  lr.clear_status();
  lr.set_annotator("ann");
  EXPECT_EQ(list_all(lr).size(), 10u);
  lr.set_annotator("nobody");
  EXPECT_TRUE(list_all(lr).empty());
  lr.clear_annotator();
  lr.mutable_from()->set_seconds(4102444800);  // 2100: nothing created after that
  EXPECT_TRUE(list_all(lr).empty());
  // A cursor made for one filter is refused with another.
  {
    v1::ListItemsRequest first;
    first.set_project_id(p.id());
    first.set_page_size(3);
    v1::ListItemsResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub.ListItems(&ctx, first, &resp).ok());
    first.set_page_token(resp.next_page_token());
    first.set_status("labeled");
    grpc::ClientContext ctx2;
    auto st = stub.ListItems(&ctx2, first, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(st.error_message(), "page_token: was made for other filters; start again without it");
  }
  {
    v1::ListItemsRequest bad;
    bad.set_project_id(p.id());
    bad.set_status("done");
    v1::ListItemsResponse resp;
    grpc::ClientContext ctx;
    EXPECT_EQ(stub.ListItems(&ctx, bad, &resp).error_message(),
              "status: must be empty, 'unlabeled' or 'labeled' (got 'done')");
    bad.set_status("");
    bad.set_project_id(777777);
    grpc::ClientContext ctx2;
    EXPECT_EQ(stub.ListItems(&ctx2, bad, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
  }

  v1::GetItemRequest gr;
  gr.set_item_id(ids[0]);
  v1::Item item;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub.GetItem(&ctx, gr, &item).ok());
  }
  EXPECT_EQ(item.text(), "text 1");
  EXPECT_EQ(item.external_id(), "ext-1");
  EXPECT_EQ(item.status(), "labeled");
  ASSERT_EQ(item.labels_size(), 1);
  EXPECT_EQ(item.labels(0).annotator(), "ann");
  gr.set_item_id(99999999);
  {
    grpc::ClientContext ctx;
    auto st = stub.GetItem(&ctx, gr, &item);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_EQ(st.error_message(), "item_id: no item 99999999");
  }

  // Label the rest (the claim carries the payloads when asked), then COMPLETE succeeds.
  {
    v1::ClaimNextRequest req;
    req.set_project_id(p.id());
    req.set_annotator("bob");
    req.set_n(20);
    req.set_with_payload(true);
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub.ClaimNext(&ctx, req, &claim).ok());
  }
  ASSERT_EQ(claim.items_size(), 15);
  EXPECT_EQ(claim.items(0).item().id(), ids[10]);
  EXPECT_EQ(claim.items(0).item().text(), "text 11");
  EXPECT_EQ(claim.items(14).item().external_id(), "ext-25");
  for (const auto& it : claim.items()) ASSERT_TRUE(Submit(stub, it.lease(), {"x"}).ok());
  {
    grpc::ClientContext ctx;
    auto st = stub.CompleteProject(&ctx, cr, &out);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  EXPECT_EQ(out.status(), "complete");
}

}  // namespace
}  // namespace labelloop::e2e
