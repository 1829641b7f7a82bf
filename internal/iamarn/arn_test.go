package iamarn

import (
	"slices"
	"strings"
	"testing"
)

func TestParseRole_valid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want Role
	}{
		{"arn:aws:iam::123456789012:role/payments-api", Role{"aws", "123456789012", "/", "payments-api"}},
		{"arn:aws:iam::123456789012:role/path/to/name", Role{"aws", "123456789012", "/path/to/", "name"}},
		{"arn:aws-cn:iam::123456789012:role/r", Role{"aws-cn", "123456789012", "/", "r"}},
		{"arn:aws-us-gov:iam::123456789012:role/a+b=c,d.e@f_g-h", Role{"aws-us-gov", "123456789012", "/", "a+b=c,d.e@f_g-h"}},
		{"arn:aws-iso:iam::123456789012:role/service-role/x", Role{"aws-iso", "123456789012", "/service-role/", "x"}},
		{"arn:aws-iso-b:iam::123456789012:role/x", Role{"aws-iso-b", "123456789012", "/", "x"}},
		{"arn:aws:iam::123456789012:role/" + strings.Repeat("n", 64), Role{"aws", "123456789012", "/", strings.Repeat("n", 64)}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseRole(tt.in)
			if err != nil {
				t.Fatalf("ParseRole(%q) error: %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParseRole(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			if got.String() != tt.in {
				t.Errorf("String() = %q, want %q", got.String(), tt.in)
			}
		})
	}
}

func TestParseRole_invalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		wantMsg string
	}{
		{"", "is not an ARN"},
		{"payments-api", "is not an ARN"},
		{"arn:aws:iam::123456789012", "is not an ARN"},
		{" arn:aws:iam::123456789012:role/x", "whitespace"},
		{"arn:awz:iam::123456789012:role/x", `unknown partition "awz"`},
		{"arn:aws:s3:::bucket/key", `service "s3"`},
		{"arn:aws:sts::123456789012:assumed-role/r/session", "assumed-role session"},
		{"arn:aws:iam:us-east-1:123456789012:role/x", `region "us-east-1"`},
		{"arn:aws:iam::12345:role/x", "not 12 digits"},
		{"arn:aws:iam::12345678901a:role/x", "not 12 digits"},
		{"arn:aws:iam::123456789012:user/alice", `IAM "user", not a role`},
		{"arn:aws:iam::123456789012:policy/p", `IAM "policy", not a role`},
		{"arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/X", `"oidc-provider", not a role`},
		{"arn:aws:iam::123456789012:role", `IAM "role", not a role`},
		{"arn:aws:iam::123456789012:role/", `role name ""`},
		{"arn:aws:iam::123456789012:role/a b", `role name "a b"`},
		{"arn:aws:iam::123456789012:role/" + strings.Repeat("n", 65), "1 to 64 characters"},
		{"arn:aws:iam::123456789012:role//x", "invalid role path"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			_, err := ParseRole(tt.in)
			if err == nil {
				t.Fatalf("ParseRole(%q) succeeded, want an error containing %q", tt.in, tt.wantMsg)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("ParseRole(%q) error = %q, want it to contain %q", tt.in, err, tt.wantMsg)
			}
			if !strings.Contains(err.Error(), "arn:") && !strings.Contains(err.Error(), "512") {
				t.Errorf("error %q does not show the expected shape", err)
			}
		})
	}
}

// Whatever parses renders back to itself and has well-formed parts;
// whatever does not gets a message that shows the expected shape.
func FuzzParseRole(f *testing.F) {
	for _, s := range []string{
		"arn:aws:iam::123456789012:role/x",
		"arn:aws:iam::123456789012:role/a/b/c",
		"arn:aws:sts::123456789012:assumed-role/r/s",
		"arn:::::", "arn:aws:iam::123456789012:role//", "",
		"arn:aws-us-gov:iam::123456789012:role/service-role/a+b=c,d.e@f_g-h",
		"arn:aws:iam::123456789012:user/alice", "arn:aws-cn:iam:cn-north-1:123456789012:role/x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRole(s)
		if err != nil {
			if !strings.Contains(err.Error(), Shape) && !strings.Contains(err.Error(), "longer than 512") {
				t.Fatalf("ParseRole(%q) error %q does not show the expected shape", s, err)
			}
			return
		}
		if r.String() != s {
			t.Fatalf("ParseRole(%q).String() = %q", s, r.String())
		}
		again, err := ParseRole(r.String())
		if err != nil || again != r {
			t.Fatalf("round trip of %q: %+v, %v", s, again, err)
		}
		if !slices.Contains(Partitions, r.Partition) || !accountRE.MatchString(r.AccountID) ||
			!strings.HasPrefix(r.Path, "/") || !strings.HasSuffix(r.Path, "/") || len(r.Path) > 512 ||
			r.Name == "" || len(r.Name) > 64 || strings.ContainsAny(r.Name, "/: ") {
			t.Fatalf("ParseRole(%q) = %+v: a part is malformed", s, r)
		}
	})
}
