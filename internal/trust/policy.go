package trust

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// Document is an IAM policy document. Only what trust policies use is
// modelled; unknown fields are ignored, as IAM ignores nothing but we need
// nothing else to decide.
type Document struct {
	Version   string      `json:"Version,omitempty"`
	ID        string      `json:"Id,omitempty"`
	Statement []Statement `json:"Statement"`
}

// Statement is one policy statement.
type Statement struct {
	Sid          string                       `json:"Sid,omitempty"`
	Effect       string                       `json:"Effect"`
	Principal    *Principal                   `json:"Principal,omitempty"`
	NotPrincipal *Principal                   `json:"NotPrincipal,omitempty"`
	Action       Values                       `json:"Action,omitempty"`
	NotAction    Values                       `json:"NotAction,omitempty"`
	Condition    map[string]map[string]Values `json:"Condition,omitempty"`
}

// Values is a policy value that may be written as one string or a list.
type Values []string

// UnmarshalJSON accepts a string, a list of strings, or scalars IAM turns
// into strings (numbers, booleans).
func (v *Values) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '[' {
		var raw []json.RawMessage
		if err := json.Unmarshal(b, &raw); err != nil {
			return err
		}
		out := make(Values, 0, len(raw))
		for _, r := range raw {
			s, err := scalar(r)
			if err != nil {
				return err
			}
			out = append(out, s)
		}
		*v = out
		return nil
	}
	s, err := scalar(b)
	if err != nil {
		return err
	}
	*v = Values{s}
	return nil
}

// MarshalJSON writes one value as a string, several as a list, as people write them.
func (v Values) MarshalJSON() ([]byte, error) {
	if len(v) == 1 {
		return json.Marshal(v[0])
	}
	return json.Marshal([]string(v))
}

func scalar(b []byte) (string, error) {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err == nil {
		return n.String(), nil
	}
	var t bool
	if err := json.Unmarshal(b, &t); err == nil {
		return fmt.Sprint(t), nil
	}
	return "", fmt.Errorf("expected a string or a list of strings, got %s", b)
}

// Principal is "*" (Wildcard) or a map of principal types to values.
type Principal struct {
	Wildcard  bool
	Federated Values
	AWS       Values
	Service   Values
	Other     map[string]Values
}

// UnmarshalJSON accepts "*" or an object.
func (p *Principal) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		if s != "*" {
			return fmt.Errorf("principal %q: only \"*\" may be written as a string", s)
		}
		p.Wildcard = true
		return nil
	}
	var m map[string]Values
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("principal: %w", err)
	}
	for k, v := range m {
		switch k {
		case "Federated":
			p.Federated = v
		case "AWS":
			p.AWS = v
		case "Service":
			p.Service = v
		default:
			if p.Other == nil {
				p.Other = map[string]Values{}
			}
			p.Other[k] = v
		}
	}
	return nil
}

// MarshalJSON writes the principal back.
func (p Principal) MarshalJSON() ([]byte, error) {
	if p.Wildcard {
		return json.Marshal("*")
	}
	m := map[string]Values{}
	for k, v := range p.Other {
		m[k] = v
	}
	if len(p.Federated) > 0 {
		m["Federated"] = p.Federated
	}
	if len(p.AWS) > 0 {
		m["AWS"] = p.AWS
	}
	if len(p.Service) > 0 {
		m["Service"] = p.Service
	}
	return json.Marshal(m)
}

// Parse reads a policy document. IAM's GetRole returns trust policies
// URL-encoded; Parse decodes them first when they are.
func Parse(doc string) (Document, error) {
	text := strings.TrimSpace(doc)
	if strings.HasPrefix(text, "%7B") || strings.HasPrefix(text, "%7b") {
		decoded, err := url.QueryUnescape(text)
		if err != nil {
			return Document{}, fmt.Errorf("policy document is URL-encoded but does not decode: %w", err)
		}
		text = decoded
	}
	var raw struct {
		Version   string          `json:"Version"`
		ID        string          `json:"Id"`
		Statement json.RawMessage `json:"Statement"`
	}
	dec := json.NewDecoder(strings.NewReader(text))
	if err := dec.Decode(&raw); err != nil {
		return Document{}, fmt.Errorf("policy document is not JSON: %w", err)
	}
	d := Document{Version: raw.Version, ID: raw.ID}
	st := bytes.TrimSpace(raw.Statement)
	switch {
	case len(st) == 0 || string(st) == "null":
		return Document{}, errors.New("policy document has no Statement")
	case st[0] == '[':
		if err := json.Unmarshal(st, &d.Statement); err != nil {
			return Document{}, fmt.Errorf("policy Statement: %w", err)
		}
	default:
		var one Statement
		if err := json.Unmarshal(st, &one); err != nil {
			return Document{}, fmt.Errorf("policy Statement: %w", err)
		}
		d.Statement = []Statement{one}
	}
	return d, nil
}

// sortedKeys returns the keys of m in order, for stable messages.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
