// Package tools runs code generation for the provider (go generate).
package tools

// Format the examples and regenerate docs/ from the provider schema.
//go:generate terraform fmt -recursive ../examples/
//go:generate go tool -modfile=go.mod tfplugindocs generate --provider-dir .. --provider-name irsa
