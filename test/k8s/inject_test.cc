// sidecar inject, the YAML writer, JSONPatch and the webhook's handling.
// Golden files over real-world manifests are in test/integration/test_inject.py.
#include "k8s/inject.h"

#include <gtest/gtest.h>

#include "k8s/json_patch.h"
#include "k8s/webhook.h"
#include "k8s/yaml_writer.h"

namespace sidecar::k8s {
namespace {

Options options(Mode mode = Mode::kNative) {
  Options o;
  o.version = "1.2.3";
  o.image = "sidecar:1.2.3";
  o.mode = mode;
  return o;
}

const char* kPod = R"(apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: app
    image: app:1
)";

YAML::Node only_doc(const std::string& text) { return YAML::Load(text); }

TEST(YamlWriter, KeepsStringsStringsAndOrder) {
  auto node = YAML::Load(
      "z: 1\na: \"8080\"\nb: 'true'\nc: plain\nd: !!str 5\ne:\nf: [1, \"2\"]\ng: {}\nh: []\n"
      "i: \"1e3\"\nj: \"a: b\"\nk: \"-x\"\nl: \"64Mi\"\nm: \"2024-01-02\"\nn: \"\"\n");
  EXPECT_EQ(to_yaml(node),
            "z: 1\na: \"8080\"\nb: \"true\"\nc: plain\nd: \"5\"\ne: null\nf:\n- 1\n- \"2\"\n"
            "g: {}\nh: []\ni: \"1e3\"\nj: \"a: b\"\nk: -x\nl: 64Mi\nm: \"2024-01-02\"\nn: \"\"\n");
}

TEST(YamlWriter, MultiLineStringsAreLiteralBlocks) {
  auto node = YAML::Load("a:\n  b: |\n    one\n    two\n  c: \"x\\ny\"\n  d: \"t\\n\\n\"\n");
  const std::string out = to_yaml(node);
  EXPECT_EQ(out, "a:\n  b: |\n    one\n    two\n  c: |-\n    x\n    y\n  d: |+\n    t\n\n");
  EXPECT_TRUE(deep_equal(YAML::Load(out), node));
}

TEST(YamlWriter, QuotesWhatAPlainScalarCannotHold) {
  auto node = YAML::Load("a: \" lead\"\nb: \"x #y\"\nc: \"tab\\there\"\nd: \"*star\"\n");
  const std::string out = to_yaml(node);
  EXPECT_EQ(out, "a: \" lead\"\nb: \"x #y\"\nc: \"tab\\there\"\nd: \"*star\"\n");
  EXPECT_TRUE(deep_equal(YAML::Load(out), node));
}

TEST(YamlWriter, JsonKeepsTypes) {
  auto node = YAML::Load(
      "{\"a\": \"1\", \"b\": 1, \"c\": true, \"d\": null, \"e\": [\"x\", 2.5], \"f\": \"q\\\"\"}");
  EXPECT_EQ(to_json(node), R"({"a":"1","b":1,"c":true,"d":null,"e":["x",2.5],"f":"q\""})");
}

TEST(Inject, NativeSidecarIsTheFirstInitContainer) {
  auto result = inject_stream(kPod, options());
  ASSERT_TRUE(result.errors.empty()) << result.errors[0];
  EXPECT_EQ(result.injected, 1);
  auto pod = only_doc(result.output);
  auto init = pod["spec"]["initContainers"];
  ASSERT_EQ(init.size(), 1u);
  EXPECT_EQ(init[0]["name"].as<std::string>(), "sidecar");
  EXPECT_EQ(init[0]["restartPolicy"].as<std::string>(), "Always");
  EXPECT_EQ(init[0]["image"].as<std::string>(), "sidecar:1.2.3");
  EXPECT_EQ(init[0]["startupProbe"]["httpGet"]["path"].as<std::string>(), "/ready");
  EXPECT_EQ(init[0]["livenessProbe"]["httpGet"]["path"].as<std::string>(), "/healthz");
  EXPECT_EQ(init[0]["securityContext"]["runAsUser"].as<int>(), 65532);
  EXPECT_EQ(pod["spec"]["containers"].size(), 1u);
  EXPECT_EQ(pod["spec"]["volumes"][0]["configMap"]["name"].as<std::string>(), "sidecar");
  EXPECT_EQ(pod["metadata"]["annotations"]["sidecar.dev/version"].as<std::string>(), "1.2.3");
  // Key order: the pod's own keys first, as they were.
  auto it = pod.begin();
  EXPECT_EQ((it++)->first.as<std::string>(), "apiVersion");
  EXPECT_EQ((it++)->first.as<std::string>(), "kind");
  EXPECT_EQ((it++)->first.as<std::string>(), "metadata");
}

TEST(Inject, ClassicSidecarIsTheLastContainer) {
  auto result = inject_stream(kPod, options(Mode::kClassic));
  ASSERT_TRUE(result.errors.empty());
  auto pod = only_doc(result.output);
  EXPECT_FALSE(pod["spec"]["initContainers"]);
  ASSERT_EQ(pod["spec"]["containers"].size(), 2u);
  EXPECT_EQ(pod["spec"]["containers"][1]["name"].as<std::string>(), "sidecar");
  EXPECT_FALSE(pod["spec"]["containers"][1]["restartPolicy"]);
}

TEST(Inject, IsIdempotentAndReplacesAnInjectionWithOtherSettings) {
  auto once = inject_stream(kPod, options());
  auto twice = inject_stream(once.output, options());
  EXPECT_EQ(twice.output, once.output);
  EXPECT_EQ(twice.injected, 0);
  EXPECT_EQ(twice.skipped, 1);

  auto classic = inject_stream(once.output, options(Mode::kClassic));
  ASSERT_TRUE(classic.errors.empty());
  EXPECT_EQ(classic.output, inject_stream(kPod, options(Mode::kClassic)).output);
}

TEST(Inject, OptOutAndOtherDocumentsPassByteForByte) {
  const std::string text = std::string("# comment kept\n") +
                           "apiVersion: v1\nkind: Service\nmetadata: {name: s}  # here too\n---\n" +
                           "kind: Pod\nmetadata:\n  annotations: {sidecar.dev/inject: 'false'}\n" +
                           "spec: {containers: [{name: a}]}\n";
  auto result = inject_stream(text, options());
  ASSERT_TRUE(result.errors.empty());
  EXPECT_EQ(result.output, text);
  EXPECT_EQ(result.skipped, 1);
}

TEST(Inject, AnnotationsSetPortConfigMapResourcesModeAndMounts) {
  const char* text = R"(kind: Deployment
metadata:
  annotations:
    sidecar.dev/mode: classic
spec:
  template:
    metadata:
      annotations:
        sidecar.dev/config: web-sidecar
        sidecar.dev/inbound-port: "8081"
        sidecar.dev/resources: "{requests: {cpu: 10m}, limits: {memory: 1}}"
        sidecar.dev/volume-mounts: "site:/srv/site,logs:/var/log/app:ro"
    spec:
      containers: [{name: app}]
      volumes: [{name: site, emptyDir: {}}, {name: logs, emptyDir: {}}]
)";
  auto result = inject_stream(text, options());
  ASSERT_TRUE(result.errors.empty()) << result.errors[0];
  auto spec = only_doc(result.output)["spec"]["template"]["spec"];
  auto c = spec["containers"][1];
  EXPECT_EQ(c["ports"][0]["containerPort"].as<int>(), 8081);
  EXPECT_EQ(to_json(c["resources"]), R"({"requests":{"cpu":"10m"},"limits":{"memory":"1"}})");
  EXPECT_EQ(spec["volumes"][2]["configMap"]["name"].as<std::string>(), "web-sidecar");
  EXPECT_EQ(c["volumeMounts"][2]["mountPath"].as<std::string>(), "/srv/site");
  EXPECT_EQ(c["volumeMounts"][3]["readOnly"].as<bool>(), true);
}

TEST(Inject, ErrorsNameTheDocumentAndThePath) {
  const char* text = R"(kind: ConfigMap
---
kind: Deployment
spec:
  template:
    spec: {}
---
kind: CronJob
spec: {jobTemplate: {spec: {template: {spec: {containers: 3}}}}}
---
kind: Pod
metadata: {annotations: {sidecar.dev/inbound-port: "http", sidecar.dev/inject: "maybe"}}
spec: {containers: [{image: x}]}
---
kind: List
items:
- kind: Pod
  spec: {containers: [{name: sidecar}]}
---
a: [b
)";
  auto result = inject_stream(text, options());
  EXPECT_TRUE(result.output.empty());
  ASSERT_EQ(result.errors.size(), 5u);
  EXPECT_EQ(result.errors[0], "doc 2: spec.template.spec: containers missing");
  EXPECT_EQ(result.errors[1], "doc 3: spec.jobTemplate.spec.template.spec.containers: not a list");
  EXPECT_EQ(result.errors[2],
            "doc 4: metadata.annotations.sidecar.dev/inject: \"maybe\": expected \"true\" or "
            "\"false\"");
  EXPECT_EQ(result.errors[3],
            "doc 5: items[0].spec.containers: a container named \"sidecar\" is already there");
  // The parser's position is the end of the unclosed flow sequence.
  EXPECT_EQ(result.errors[4].rfind("doc 6: line 21: ", 0), 0u) << result.errors[4];
}

TEST(Inject, BadAnnotationValuesAreErrors) {
  const char* text = R"(kind: Pod
metadata:
  annotations:
    sidecar.dev/inbound-port: "70000"
    sidecar.dev/config: "Not_A_Name"
    sidecar.dev/resources: "{requests: {cpu: 1}, bogus: {}}"
    sidecar.dev/mode: sideways
    sidecar.dev/volume-mounts: "nope"
spec: {containers: [{name: a}]}
)";
  auto result = inject_stream(text, options());
  ASSERT_EQ(result.errors.size(), 5u);
  for (const auto& e : result.errors)
    EXPECT_EQ(e.rfind("doc 1: metadata.annotations.", 0), 0u) << e;
}

TEST(JsonPatch, AddsAtIndexesAndEscapesKeys) {
  auto a = YAML::Load(R"({"m": {"a/b": "1"}, "s": ["x", "y"], "r": 1, "gone": 2})");
  auto b = YAML::Load(R"({"m": {"a/b": "1", "c~d": "2"}, "s": ["w", "x", "y", "z"], "r": "1"})");
  EXPECT_EQ(json_patch(a, b),
            R"([{"op":"remove","path":"/gone"},{"op":"add","path":"/m/c~0d","value":"2"},)"
            R"({"op":"add","path":"/s/0","value":"w"},{"op":"add","path":"/s/3","value":"z"},)"
            R"({"op":"replace","path":"/r","value":"1"}])");
  EXPECT_EQ(json_patch(a, a), "[]");
}

TEST(Webhook, AnswersWithAPatchAndTheUid) {
  const std::string review =
      R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-1",)"
      R"("kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE","object":)"
      R"({"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"web-"},"spec":{"containers":)"
      R"([{"name":"app","image":"app:1"}]}}}})";
  auto answer = handle_webhook_request("POST", "/inject?timeout=10s", review, options());
  EXPECT_EQ(answer.status, 200);
  auto json = YAML::Load(answer.body);
  EXPECT_EQ(json["response"]["uid"].as<std::string>(), "u-1");
  EXPECT_EQ(json["response"]["allowed"].as<bool>(), true);
  EXPECT_EQ(json["response"]["patchType"].as<std::string>(), "JSONPatch");
  EXPECT_FALSE(json["response"]["patch"].as<std::string>().empty());
}

TEST(Webhook, AllowsWithoutPatchWhenOptedOutAndWarnsOnBadObjects) {
  auto opted = handle_admission_review(
      R"({"request":{"uid":"a","object":{"kind":"Pod","metadata":{"annotations":)"
      R"({"sidecar.dev/inject":"false"}},"spec":{"containers":[{"name":"x"}]}}}})",
      options());
  EXPECT_EQ(opted.body.find("patch"), std::string::npos);
  auto bad = handle_admission_review(R"({"request":{"uid":"b","object":{"kind":"Pod","spec":{}}}})",
                                     options());
  EXPECT_NE(bad.body.find(R"("warnings":["sidecar not injected: spec: containers missing"])"),
            std::string::npos)
      << bad.body;
  EXPECT_NE(bad.body.find(R"("allowed":true)"), std::string::npos);
}

TEST(Webhook, RoutesAndRejectsGarbage) {
  EXPECT_EQ(handle_webhook_request("GET", "/ready", "", options()).status, 200);
  EXPECT_EQ(handle_webhook_request("GET", "/inject", "", options()).status, 405);
  EXPECT_EQ(handle_webhook_request("GET", "/nope", "", options()).status, 404);
  EXPECT_EQ(handle_webhook_request("POST", "/inject", "{not json", options()).status, 400);
  EXPECT_EQ(handle_webhook_request("POST", "/inject", "{\"kind\":\"x\"}", options()).status, 400);
}

}  // namespace
}  // namespace sidecar::k8s
