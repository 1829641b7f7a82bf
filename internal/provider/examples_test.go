package provider

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestExamplesValidate runs `terraform validate` on every example, with the
// provider built from this checkout (the environment's dev overrides), so a
// schema change that breaks the documentation fails the build.
func TestExamplesValidate(t *testing.T) {
	requireEnv(t)
	tf := os.Getenv("TF_ACC_TERRAFORM_PATH")
	if tf == "" {
		var err error
		if tf, err = exec.LookPath("terraform"); err != nil {
			t.Skip("no terraform CLI")
		}
	}
	rc := filepath.Join(os.Getenv("IRSA_TESTENV_STATE"), "terraformrc")
	examples, err := filepath.Glob("../../examples/*/*.tf")
	if err != nil {
		t.Fatal(err)
	}
	more, _ := filepath.Glob("../../examples/*/*/*.tf")
	dirs := map[string]bool{}
	for _, f := range append(examples, more...) {
		dirs[filepath.Dir(f)] = true
	}
	if len(dirs) < 4 {
		t.Fatalf("found only %d example directories", len(dirs))
	}
	for dir := range dirs {
		t.Run(strings.TrimPrefix(dir, "../../"), func(t *testing.T) {
			t.Parallel()
			if strings.HasSuffix(dir, "composition") {
				t.Skip("uses the AWS provider, not installable offline; TestAccServiceAccountBinding_composition applies it with a stand-in role")
			}
			work := t.TempDir()
			files, _ := filepath.Glob(filepath.Join(dir, "*.tf"))
			hasTerraformBlock := false
			for _, f := range files {
				data, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				hasTerraformBlock = hasTerraformBlock || strings.Contains(string(data), "required_providers")
				if err := os.WriteFile(filepath.Join(work, filepath.Base(f)), data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if !hasTerraformBlock {
				// Documentation snippets leave out the terraform block.
				block := "terraform {\n  required_providers {\n    irsa = {\n      source = \"irsa-dev/irsa\"\n    }\n  }\n}\n"
				if err := os.WriteFile(filepath.Join(work, "versions.tf"), []byte(block), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command(tf, "validate", "-no-color")
			cmd.Dir = work
			cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+rc)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("terraform validate %s: %v\n%s", dir, err, out)
			}
		})
	}
}
