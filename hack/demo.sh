#!/usr/bin/env bash
# make demo: the AWS guide's IRSA procedure, done by the provider, end to end
# on the local environment. Every step prints what it shows.
set -euo pipefail
cd "$(dirname "$0")/.."
. hack/lib.sh

# Bold headings on a terminal; plain text in a log.
if [ -t 1 ]; then
  step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
else
  step() { printf '\n==> %s\n' "$*"; }
fi

step "Starting the local EKS-like environment (the first run builds Kubernetes, about 12 minutes; later runs reuse it)"
go run ./internal/testenv/cmd/testenv up
. .testenv/env.sh
kubectl=$(go run ./internal/testenv/cmd/testenv kubectl)
tf=$(terraform_cli)

# kwok plays the kubelet, so no container runs and `kubectl exec` cannot
# work: the env the webhook injected is read from the pod spec instead.
show_aws_env() {
  local pod
  for pod in $("$kubectl" -n demo get pods -l app=demo-app -o jsonpath='{.items[*].metadata.name}'); do
    echo "$pod:"
    "$kubectl" -n demo get pod "$pod" -o jsonpath='{range .spec.containers[*].env[*]}{"  "}{.name}={.value}{"\n"}{end}' | grep '^  AWS_' || echo "  (no AWS_ variables)"
  done
}

step "1. A workload running as ServiceAccount demo/demo-app, without AWS credentials"
# Start from scratch, so a second run shows the same story.
"$kubectl" delete namespace demo --ignore-not-found --wait=true --timeout=120s
"$kubectl" apply -f examples/quickstart/workload.yaml
"$kubectl" -n demo rollout status deployment/demo-app --timeout=120s
"$kubectl" -n demo get pods -l app=demo-app
show_aws_env
pods_before=$("$kubectl" -n demo get pods -l app=demo-app -o jsonpath='{.items[*].metadata.name}')

step "2. An IAM role whose trust policy allows system:serviceaccount:demo:demo-app (and, for step 7, EKS Pod Identity for it)"
role=$(go run ./internal/testenv/cmd/testenv create-role -name demo-app -service-account demo/demo-app -pod-identity)
echo "$role"

step "3. terraform apply examples/quickstart ($tf)"
work=.testenv/demo
rm -rf "$work" && mkdir -p "$work" && cp examples/quickstart/main.tf "$work/"
"$tf" -chdir="$work" apply -auto-approve -input=false -var "role_arn=$role"

step "4. The pods were restarted (kubectl get pods)"
"$kubectl" -n demo get pods -l app=demo-app

step "5. The new pods carry AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE"
show_aws_env

step "6. Drift detection: terraform plan -detailed-exitcode"
set +e
"$tf" -chdir="$work" plan -detailed-exitcode -input=false -var "role_arn=$role" >/dev/null
code=$?
set -e
case $code in
  0) echo "exit code 0: no drift" ;;
  *) echo "exit code $code: unexpected" >&2; exit 1 ;;
esac

# Who the SDK's credential chain is in each pod, and through which
# credential provider.
show_identities() {
  local pod
  for pod in $("$kubectl" -n demo get pods -l app=demo-app -o jsonpath='{.items[*].metadata.name}'); do
    echo "$pod: $(go run ./internal/testenv/cmd/testenv identity "demo/$pod")"
  done
}
step "6b. The pods' credentials work: sts:GetCallerIdentity through the AWS SDK's default chain"
show_identities

# What happened, in a few lines, from the cluster and the state.
pods_after=$("$kubectl" -n demo get pods -l app=demo-app -o jsonpath='{.items[*].metadata.name}')
replaced=0
for p in $pods_before; do case " $pods_after " in *" $p "*) ;; *) replaced=$((replaced + 1)) ;; esac; done
credentialed=0
for p in $pods_after; do
  "$kubectl" -n demo get pod "$p" -o jsonpath='{.spec.containers[0].env[?(@.name=="AWS_ROLE_ARN")].value}' | grep -qx "$role" && credentialed=$((credentialed + 1))
done
annotation=$("$kubectl" -n demo get serviceaccount demo-app -o jsonpath='{.metadata.annotations.eks\.amazonaws\.com/role-arn}')

step "7. Migrate to EKS Pod Identity: terraform apply -var mechanism=pod_identity (one in-place update)"
cluster=irsa-local # the local environment's EKS cluster (aws eks list-clusters)
"$tf" -chdir="$work" apply -auto-approve -input=false -var "role_arn=$role" -var mechanism=pod_identity -var "cluster_name=$cluster"

step "8. The pods switched: container credentials, no AWS_ROLE_ARN, and the annotation is gone"
"$kubectl" -n demo get pods -l app=demo-app
show_aws_env
"$kubectl" -n demo get serviceaccount demo-app -o jsonpath='{.metadata.annotations}'; echo

step "9. Their credentials work, now through the EKS Pod Identity Agent"
show_identities

step "10. terraform plan -detailed-exitcode after the migration"
set +e
"$tf" -chdir="$work" plan -detailed-exitcode -input=false -var "role_arn=$role" -var mechanism=pod_identity -var "cluster_name=$cluster" >/dev/null
code=$?
set -e
case $code in
  0) echo "exit code 0: no drift" ;;
  *) echo "exit code $code: unexpected" >&2; exit 1 ;;
esac
association=$("$tf" -chdir="$work" state show -no-color irsa_service_account_binding.demo | awk -F'"' '/association_id/ {print $2}')
on_pod_identity=0
for p in $("$kubectl" -n demo get pods -l app=demo-app -o jsonpath='{.items[*].metadata.name}'); do
  "$kubectl" -n demo get pod "$p" -o jsonpath='{.spec.containers[0].env[?(@.name=="AWS_CONTAINER_CREDENTIALS_FULL_URI")].value}' | grep -q . && on_pod_identity=$((on_pod_identity + 1))
done

step "Summary"
cat <<SUMMARY
  annotated   ServiceAccount demo/demo-app  eks.amazonaws.com/role-arn=$annotation
  restarted   Deployment demo/demo-app: $replaced of $(wc -w <<<"$pods_before") pods replaced (rollout restart, after a dry-run pod showed the webhook injects the role)
  verified    $credentialed of $(wc -w <<<"$pods_after") pods carry AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE
  no drift    terraform plan -detailed-exitcode exited 0
  migrated    mechanism = "pod_identity": association $association; $on_pod_identity pods on container credentials, the annotation removed last; plan empty

Next, move the binding back to IRSA the same way (annotation first, association deleted, pods recycled):
  . .testenv/env.sh
  $tf -chdir=$work apply -var "role_arn=$role" -var mechanism=irsa -var cluster_name=$cluster

The environment keeps running: . .testenv/env.sh to use it, make testenv-down to stop it.
SUMMARY
