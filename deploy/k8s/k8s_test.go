package k8s

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	rollouts "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	kustypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite base/prometheusrule.yaml from deploy/prometheus/*.yml")

// metricTemplate is the part of Flagger's MetricTemplate (flagger.app/
// v1beta1) the manifests use. Flagger's API module is not served here, so
// this strict struct stands in for its types: a field it does not list
// fails the decoding, but a field Flagger would refuse is not caught.
type metricTemplate struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace,omitempty"`
		Labels    map[string]string `json:"labels,omitempty"`
	} `json:"metadata"`
	Spec struct {
		Provider struct {
			Type    string `json:"type"`
			Address string `json:"address"`
		} `json:"provider"`
		Query string `json:"query"`
	} `json:"spec"`
}

// kinds maps apiVersion/kind to a new object of its upstream Go type.
var kinds = map[string]func() any{
	"v1/Namespace":                                  func() any { return &corev1.Namespace{} },
	"apps/v1/DaemonSet":                             func() any { return &appsv1.DaemonSet{} },
	"monitoring.coreos.com/v1/PodMonitor":           func() any { return &monitoringv1.PodMonitor{} },
	"monitoring.coreos.com/v1/PrometheusRule":       func() any { return &monitoringv1.PrometheusRule{} },
	"argoproj.io/v1alpha1/AnalysisTemplate":         func() any { return &rollouts.AnalysisTemplate{} },
	"flagger.app/v1beta1/MetricTemplate":            func() any { return &metricTemplate{} },
	"kustomize.config.k8s.io/v1beta1/Kustomization": func() any { return &kustypes.Kustomization{} },
}

// decode decodes one YAML document strictly (an unknown or duplicated
// field is an error) into the Go type of its apiVersion and kind.
func decode(doc []byte) (any, error) {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(doc, &head); err != nil {
		return nil, err
	}
	mk, ok := kinds[head.APIVersion+"/"+head.Kind]
	if !ok {
		return nil, fmt.Errorf("no Go type for %s %s: add it to kinds", head.APIVersion, head.Kind)
	}
	obj := mk()
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return nil, fmt.Errorf("%s: %w", head.Kind, err)
	}
	return obj, nil
}

// documents splits a multi-document YAML file.
func documents(b []byte) [][]byte {
	var docs [][]byte
	for _, d := range bytes.Split(b, []byte("\n---\n")) {
		if len(bytes.TrimSpace(d)) > 0 {
			docs = append(docs, d)
		}
	}
	return docs
}

func manifestFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".yaml") {
			files = append(files, path)
		}
		return err
	})
	if err != nil || len(files) < 8 {
		t.Fatalf("manifests: %v %v", files, err)
	}
	return files
}

// TestManifestsDecodeStrictly decodes every file under deploy/k8s into
// the upstream types: k8s.io/api, prometheus-operator's monitoring/v1,
// Argo Rollouts' v1alpha1, kustomize's Kustomization (Flagger: see
// metricTemplate).
func TestManifestsDecodeStrictly(t *testing.T) {
	for _, f := range manifestFiles(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range documents(b) {
			if _, err := decode(doc); err != nil {
				t.Errorf("%s, document %d: %v", f, i+1, err)
			}
		}
	}
}

// TestStrictDecodingRefusesUnknownFields shows the check can fail: a
// misspelt field in a DaemonSet and in a MetricTemplate.
func TestStrictDecodingRefusesUnknownFields(t *testing.T) {
	for _, doc := range []string{
		"apiVersion: apps/v1\nkind: DaemonSet\nspec:\n  template:\n    spec:\n      containers: [{name: a, readOnlyRootFilesystem: true}]\n",
		"apiVersion: flagger.app/v1beta1\nkind: MetricTemplate\nspec: {query: up, interval: 1m}\n",
		"apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nspec: {metrics: [{name: a, succesCondition: x}]}\n",
	} {
		if _, err := decode([]byte(doc)); err == nil {
			t.Errorf("decoded without error:\n%s", doc)
		}
	}
}

// render builds a kustomization (as `kubectl kustomize DIR`) and decodes
// every resource it produces strictly.
func render(t *testing.T, dir string) map[string]any {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize %s: %v", dir, err)
	}
	out := map[string]any{}
	for _, r := range m.Resources() {
		b, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		obj, err := decode(b)
		if err != nil {
			t.Fatalf("kustomize %s: %s: %v", dir, r.CurId(), err)
		}
		if ns := r.GetNamespace(); r.GetKind() != "Namespace" && ns != "lighthouse" {
			t.Errorf("%s: %s in namespace %q, want lighthouse", dir, r.CurId(), ns)
		}
		out[r.GetKind()+"/"+r.GetName()] = obj
	}
	return out
}

// TestOverlaysRender renders the base and the staging overlay and checks
// what the overlay changes: the cluster label, the image, the phase.
func TestOverlaysRender(t *testing.T) {
	base := render(t, "base")
	checkDaemonSet(t, base["DaemonSet/lighthouse-node"].(*appsv1.DaemonSet))
	st := render(t, "overlays/staging")
	if len(st) != len(base) {
		t.Errorf("staging renders %d resources, the base %d", len(st), len(base))
	}
	pm := st["PodMonitor/lighthouse"].(*monitoringv1.PodMonitor)
	for _, ep := range pm.Spec.PodMetricsEndpoints {
		var cluster, node bool
		for _, r := range ep.RelabelConfigs {
			cluster = cluster || r.TargetLabel == "cluster" && r.Replacement != nil && *r.Replacement == "staging"
			node = node || r.TargetLabel == "node" && slices.Contains(r.SourceLabels, "__meta_kubernetes_pod_node_name")
		}
		if !cluster || !node {
			t.Errorf("staging PodMonitor endpoint %s: cluster=staging %v, node from the pod's node %v", *ep.Port, cluster, node)
		}
	}
	ds := st["DaemonSet/lighthouse-node"].(*appsv1.DaemonSet)
	checkDaemonSet(t, ds)
	for _, c := range ds.Spec.Template.Spec.Containers {
		if c.Image != "ghcr.io/lighthouse-fs/lighthouse:staging" {
			t.Errorf("staging %s image %q", c.Name, c.Image)
		}
	}
	if args := ds.Spec.Template.Spec.Containers[2].Args; !slices.Contains(args, "--phase") {
		t.Errorf("staging proxy args %v: no --phase", args)
	}
	at := st["AnalysisTemplate/lighthouse-fleet"].(*rollouts.AnalysisTemplate)
	if v := at.Spec.Args[0].Value; at.Spec.Args[0].Name != "cluster" || v == nil || *v != "staging" {
		t.Errorf("staging AnalysisTemplate args %+v", at.Spec.Args)
	}
}

// checkDaemonSet checks the properties docs/fleet.md promises.
func checkDaemonSet(t *testing.T, ds *appsv1.DaemonSet) {
	t.Helper()
	spec := ds.Spec.Template.Spec
	if p := spec.SecurityContext.SeccompProfile; p == nil || p.Type != corev1.SeccompProfileTypeLocalhost ||
		p.LocalhostProfile == nil || filepath.Base(*p.LocalhostProfile) != "seccomp-bridge.json" {
		t.Errorf("pod seccomp profile %+v, want Localhost .../seccomp-bridge.json", p)
	}
	if _, err := os.Stat("../docker/seccomp-bridge.json"); err != nil {
		t.Errorf("the profile the pod names: %v", err)
	}
	names := map[string]corev1.Container{}
	for _, c := range spec.Containers {
		names[c.Name] = c
	}
	for _, name := range []string{"bridge-primary", "bridge-shadow"} {
		c, ok := names[name]
		if !ok {
			t.Fatalf("no container %s", name)
		}
		sc := c.SecurityContext
		if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 1000 || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.Privileged != nil && *sc.Privileged || sc.Capabilities == nil ||
			!slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || !slices.Equal(sc.Capabilities.Add, []corev1.Capability{"SYS_ADMIN"}) {
			t.Errorf("%s security context %+v: want uid 1000, read-only root, not privileged, drop ALL, add SYS_ADMIN only", name, sc)
		}
		fuse := false
		for _, m := range c.VolumeMounts {
			fuse = fuse || m.MountPath == "/dev/fuse"
			if m.MountPropagation != nil && *m.MountPropagation != corev1.MountPropagationNone {
				t.Errorf("%s: mount %s propagates (%s): a bridge's mount stays in its container", name, m.MountPath, *m.MountPropagation)
			}
		}
		if !fuse {
			t.Errorf("%s: no /dev/fuse", name)
		}
	}
	px, ok := names["proxy"]
	if !ok {
		t.Fatal("no proxy container")
	}
	front := false
	for _, m := range px.VolumeMounts {
		if m.MountPropagation != nil && *m.MountPropagation == corev1.MountPropagationBidirectional {
			front = slices.Contains(px.Args, m.MountPath) // --mount: the front mount is there
		}
	}
	// The API server allows Bidirectional only in a privileged container.
	if !front || px.SecurityContext == nil || px.SecurityContext.Privileged == nil || !*px.SecurityContext.Privileged {
		t.Errorf("proxy: front mount with Bidirectional propagation %v, privileged %+v", front, px.SecurityContext)
	}
	for _, v := range spec.Volumes {
		if v.Name == "fuse" && (v.HostPath == nil || v.HostPath.Path != "/dev/fuse") {
			t.Errorf("fuse volume %+v", v)
		}
	}
}
