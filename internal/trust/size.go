package trust

import "unicode"

// IAM's quota on the length of a role trust policy: 2,048 characters by
// default, raisable to 4,096 through a Service Quotas request. IAM does
// not count white space.
const (
	SizeQuota    = 2048
	MaxSizeQuota = 4096
)

// Size is the length of doc as IAM counts it against the quota: its
// characters other than white space.
func Size(doc string) int {
	n := 0
	for _, r := range doc {
		if !unicode.IsSpace(r) {
			n++
		}
	}
	return n
}

// NearQuota reports whether a policy of size characters is within 10% of
// the quota it lives under: 2,048, or 4,096 for a policy already longer
// than 2,048 (its account raised the quota). It returns that quota.
func NearQuota(size int) (quota int, near bool) {
	quota = SizeQuota
	if size > SizeQuota {
		quota = MaxSizeQuota
	}
	return quota, size*10 >= quota*9
}
