package eksapi

import (
	"encoding/base64"
	"fmt"
	"net/http"
)

// clusterDescription is the Cluster shape, with the members a client of
// the local cluster can use; the JSON names are the EKS model's.
type clusterDescription struct {
	Name                    string                  `json:"name"`
	Arn                     string                  `json:"arn"`
	CreatedAt               epochSeconds            `json:"createdAt"`
	Version                 string                  `json:"version,omitempty"`
	Endpoint                string                  `json:"endpoint"`
	RoleArn                 string                  `json:"roleArn"`
	Identity                clusterIdentity         `json:"identity"`
	Status                  string                  `json:"status"`
	CertificateAuthority    *certificate            `json:"certificateAuthority,omitempty"`
	PlatformVersion         string                  `json:"platformVersion"`
	Tags                    map[string]string       `json:"tags"`
	KubernetesNetworkConfig kubernetesNetworkConfig `json:"kubernetesNetworkConfig"`
	AccessConfig            accessConfig            `json:"accessConfig"`
}

type clusterIdentity struct {
	OIDC struct {
		Issuer string `json:"issuer"`
	} `json:"oidc"`
}

type certificate struct {
	Data string `json:"data"`
}

type kubernetesNetworkConfig struct {
	ServiceIPv4CIDR string `json:"serviceIpv4Cidr"`
	IPFamily        string `json:"ipFamily"`
}

type accessConfig struct {
	AuthenticationMode string `json:"authenticationMode"`
}

// ClusterARN is the ARN of cluster name in region and account.
func ClusterARN(region, account, name string) string {
	return fmt.Sprintf("arn:aws:eks:%s:%s:cluster/%s", region, account, name)
}

func (s *Server) describeCluster(w http.ResponseWriter, r *http.Request) error {
	name, err := s.cluster(r)
	if err != nil {
		return err
	}
	c := clusterDescription{
		Name:      name,
		Arn:       ClusterARN(s.cfg.Region, s.cfg.AccountID, name),
		CreatedAt: epochSeconds(s.cfg.CreatedAt),
		Version:   s.cfg.KubernetesVersion,
		Endpoint:  s.cfg.Endpoint,
		// The cluster role of an EKS cluster; nothing assumes it here.
		RoleArn:         fmt.Sprintf("arn:aws:iam::%s:role/%s-cluster", s.cfg.AccountID, name),
		Status:          "ACTIVE",
		PlatformVersion: "eks.1",
		Tags:            map[string]string{},
		// The environment's --service-cluster-ip-range.
		KubernetesNetworkConfig: kubernetesNetworkConfig{ServiceIPv4CIDR: "10.0.0.0/24", IPFamily: "ipv4"},
		AccessConfig:            accessConfig{AuthenticationMode: "API_AND_CONFIG_MAP"},
	}
	c.Identity.OIDC.Issuer = s.cfg.Issuer
	if len(s.cfg.CAData) > 0 {
		c.CertificateAuthority = &certificate{Data: base64.StdEncoding.EncodeToString(s.cfg.CAData)}
	}
	writeJSON(w, http.StatusOK, map[string]any{"cluster": c})
	return nil
}

func (s *Server) listClusters(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if v := q.Get("maxResults"); v != "" {
		// ListClustersRequestMaxResults is 1-100 in the model.
		if _, err := maxResults("", v); err != nil {
			return err
		}
	}
	clusters := []string{s.cfg.ClusterName}
	if q.Get("nextToken") != "" {
		// One cluster fits every page: a token can only be one this
		// emulator never issued. Not confirmed: AWS's wording.
		return invalidParameter("", "The nextToken is not valid.")
	}
	writeJSON(w, http.StatusOK, map[string]any{"clusters": clusters})
	return nil
}
