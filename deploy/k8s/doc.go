// Package k8s holds the Kubernetes manifests of a Lighthouse fleet (a
// kustomize base and overlays: the per-node DaemonSet, the PodMonitor, the
// rules as a PrometheusRule, the Argo Rollouts and Flagger analyses). Its
// Go is the test that decodes each manifest strictly into the upstream API
// types and renders the overlays, since no cluster runs here.
package k8s
