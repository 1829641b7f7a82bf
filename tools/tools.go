// Package tools runs code generation for the provider (go generate).
package tools

// Regenerate docs/ from the provider schema, templates/ and examples/.
//go:generate go tool -modfile=go.mod tfplugindocs generate --provider-dir .. --provider-name irsa
