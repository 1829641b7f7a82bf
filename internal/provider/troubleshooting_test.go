package provider

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// diagnosticSummaries reads the provider's source for every diagnostic
// summary it can emit: the literal summaries of diag constructors and
// Add* calls, the trust check's fail calls, and "Unable to " plus each
// action given to kubeAPIError and eksAPIError.
func diagnosticSummaries(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	summaryArg := map[string]int{
		"NewErrorDiagnostic": 0, "NewWarningDiagnostic": 0, "AddError": 0, "AddWarning": 0,
		"AddAttributeError": 1, "AddAttributeWarning": 1, "fail": 0,
		"NewAttributeErrorDiagnostic": 1, "NewAttributeWarningDiagnostic": 1,
	}
	var out []string
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			var name string
			switch fn := call.Fun.(type) {
			case *ast.Ident:
				name = fn.Name
			case *ast.SelectorExpr:
				name = fn.Sel.Name
			}
			literal := func(i int) (string, bool) {
				if i >= len(call.Args) {
					return "", false
				}
				lit, ok := call.Args[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					return "", false
				}
				s, err := strconv.Unquote(lit.Value)
				return s, err == nil
			}
			if i, ok := summaryArg[name]; ok {
				if s, ok := literal(i); ok {
					out = append(out, s)
				}
			}
			if name == "kubeAPIError" {
				if s, ok := literal(1); ok {
					out = append(out, "Unable to "+s)
				}
			}
			if name == "eksAPIError" {
				if s, ok := literal(0); ok {
					out = append(out, "Unable to "+s)
				}
			}
			return true
		})
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Every diagnostic the provider can emit has an entry in the troubleshooting
// guide, and the guide has no entry for one it cannot.
func TestTroubleshootingGuideCoversEveryDiagnostic(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../templates/guides/troubleshooting.md.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	var headings []string
	for _, m := range regexp.MustCompile(`(?m)^### (.+)$`).FindAllStringSubmatch(string(raw), -1) {
		headings = append(headings, strings.TrimSpace(m[1]))
	}
	summaries := diagnosticSummaries(t)
	if len(summaries) < 20 {
		t.Fatalf("found only %d diagnostic summaries in the source: the scan is broken", len(summaries))
	}
	for _, s := range summaries {
		if !slices.Contains(headings, s) {
			t.Errorf("diagnostic %q has no entry (### %s) in templates/guides/troubleshooting.md.tmpl", s, s)
		}
	}
	for _, h := range headings {
		if !slices.Contains(summaries, h) {
			t.Errorf("troubleshooting entry %q matches no diagnostic the provider emits", h)
		}
	}
}
