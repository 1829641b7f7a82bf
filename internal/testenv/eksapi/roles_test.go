package eksapi

import "testing"

func TestTrustsPodIdentity(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		doc  string
		want bool
	}{
		{"documented policy", podIdentityTrust, true},
		{"one statement, not a list", `{"Statement":{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}}`, true},
		{"actions in two statements", `{"Statement":[
			{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":"sts:AssumeRole"},
			{"Effect":"Allow","Principal":{"Service":["ec2.amazonaws.com","pods.eks.amazonaws.com"]},"Action":"sts:TagSession"}]}`, true},
		{"wildcard action", `{"Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":"sts:*"}]}`, true},
		{"with a condition", `{"Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"],"Condition":{"StringEquals":{"aws:SourceAccount":"123456789012"}}}]}`, true},
		{"IRSA beside Pod Identity", `{"Statement":[` + webIdentityTrust[len(`{"Version":"2012-10-17","Statement":[`):len(webIdentityTrust)-2] + `,{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}`, true},
		{"web identity only", webIdentityTrust, false},
		{"no TagSession", `{"Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":"sts:AssumeRole"}]}`, false},
		{"another service", `{"Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}`, false},
		{"deny", `{"Statement":[{"Effect":"Deny","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}`, false},
		{"not JSON", `{`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := trustsPodIdentity(tc.doc); got != tc.want {
				t.Errorf("trustsPodIdentity = %v, want %v\n%s", got, tc.want, tc.doc)
			}
		})
	}
}

func TestRoleName(t *testing.T) {
	t.Parallel()
	for arn, want := range map[string]string{
		"arn:aws:iam::123456789012:role/app":              "app",
		"arn:aws:iam::123456789012:role/path/to/app":      "app",
		"arn:aws-cn:iam::123456789012:role/app":           "app",
		"arn:aws:iam::123456789012:user/app":              "",
		"arn:aws:sts::123456789012:assumed-role/app/sess": "",
		"app": "",
	} {
		got, ok := roleName(arn)
		if got != want || ok != (want != "") {
			t.Errorf("roleName(%q) = %q, %v; want %q", arn, got, ok, want)
		}
	}
}
