# Sourced by `make test`: points terraform-plugin-testing at the CLI to use.
# TF_ACC_TERRAFORM_VERSION is never set: it would make plugin-testing download one.
# shellcheck shell=bash
. hack/lib.sh
TF_ACC_TERRAFORM_PATH=$(terraform_cli)
export TF_ACC_TERRAFORM_PATH
case "$TF_ACC_TERRAFORM_PATH" in
  */tofu) export TF_ACC_PROVIDER_HOST=registry.opentofu.org ;;
esac
