#!/usr/bin/env bash
# A kind cluster with the vnf-operator CRDs, RBAC and Deployment installed (needs Docker and kind;
# not run in CI, which uses the local control plane of `make cluster-up` instead).
#   KIND_CLUSTER   cluster name (default vnf-operator, as `make kind-down` expects)
#   IMAGE          operator image to load into the cluster (default vnf-operator:dev, from `make image`)
#   SAMPLES=1      also apply providers/*.yaml and manifests/samples/
set -euo pipefail
cd "$(dirname "$0")/.."
cluster="${KIND_CLUSTER:-vnf-operator}"
image="${IMAGE:-vnf-operator:dev}"
for tool in docker kind kubectl; do
  command -v "$tool" >/dev/null || { echo "kind-up: $tool is required" >&2; exit 1; }
done
context="kind-$cluster"

if ! kind get clusters 2>/dev/null | grep -qx "$cluster"; then
  kind create cluster --name "$cluster" --wait 120s
fi

# kind nodes cannot pull a locally built image: load it when it exists.
if docker image inspect "$image" >/dev/null 2>&1; then
  kind load docker-image "$image" --name "$cluster"
else
  echo "kind-up: image $image not found locally (run 'make image'); the operator pod will not start" >&2
fi

kubectl --context "$context" apply --server-side -k manifests/
kubectl --context "$context" wait --for=condition=Established crd --all --timeout=60s
# kopf's peering object; a separate step because its CRD must be established first.
printf 'apiVersion: kopf.dev/v1\nkind: ClusterKopfPeering\nmetadata:\n  name: default\n' |
  kubectl --context "$context" apply --server-side -f -

if [ "${SAMPLES:-0}" = 1 ]; then
  shopt -s nullglob
  providers=(providers/*.yaml)
  [ ${#providers[@]} -eq 0 ] || kubectl --context "$context" apply --server-side "${providers[@]/#/--filename=}"
  kubectl --context "$context" apply --server-side -k manifests/samples/
fi

if docker image inspect "$image" >/dev/null 2>&1; then
  kubectl --context "$context" -n vnf-system rollout status deployment/vnf-operator --timeout=180s
fi
echo "kind cluster '$cluster' ready: kubectl --context $context get vnf -A"
