package awsiam

import "strings"

// partitionRegions maps each partition to the region its IAM and STS calls
// go to when the provider's region is in another partition. IAM is global
// within a partition; the region only selects the partition's endpoints and
// the signing region.
var partitionRegions = map[string]string{
	"aws":        "us-east-1",
	"aws-cn":     "cn-north-1",
	"aws-us-gov": "us-gov-west-1",
	"aws-iso":    "us-iso-east-1",
	"aws-iso-b":  "us-isob-east-1",
	"aws-iso-e":  "eu-isoe-west-1",
	"aws-iso-f":  "us-isof-south-1",
	"aws-eusc":   "eusc-de-east-1",
}

// regionPrefixes are the region name prefixes of the partitions other than
// aws, longest first so that us-isob- is not taken for us-iso-.
var regionPrefixes = []struct{ prefix, partition string }{
	{"us-isob-", "aws-iso-b"},
	{"us-isof-", "aws-iso-f"},
	{"eu-isoe-", "aws-iso-e"},
	{"us-iso-", "aws-iso"},
	{"us-gov-", "aws-us-gov"},
	{"eusc-", "aws-eusc"},
	{"cn-", "aws-cn"},
}

// PartitionOf returns the partition of region; "aws" for an empty or
// unrecognised region, as the SDK's endpoint rules do.
func PartitionOf(region string) string {
	for _, p := range regionPrefixes {
		if strings.HasPrefix(region, p.prefix) {
			return p.partition
		}
	}
	return "aws"
}

// RegionFor returns the region the client uses for calls into partition:
// the configured region when it is in that partition, else the partition's
// default region.
func RegionFor(partition, configured string) string {
	if configured != "" && PartitionOf(configured) == partition {
		return configured
	}
	if r, ok := partitionRegions[partition]; ok {
		return r
	}
	return partitionRegions["aws"]
}
