package console

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// sslTermination is what the API answers of a load balancer's SSL
// termination: never a private key (the API answers none).
type sslTermination struct {
	Certificate             string `json:"certificate"`
	IntermediateCertificate string `json:"intermediateCertificate"`
	Enabled                 bool   `json:"enabled"`
	SecurePort              int    `json:"securePort"`
	SecureTrafficOnly       bool   `json:"secureTrafficOnly"`
	CipherProfile           string `json:"cipherProfile"`
	SecurityProtocols       []struct {
		Name   string `json:"securityProtocolName"`
		Status string `json:"securityProtocolStatus"`
	} `json:"securityProtocols"`
	Fingerprint string `json:"sslFingerprint"`
	CommonName  string `json:"sslCommonName"`
}

type certificateMapping struct {
	ID       int    `json:"id"`
	HostName string `json:"hostName"`
}

// features are the parts of a load balancer's page read apart from the
// load balancer: its error page, SSL termination, certificate mappings
// and the termination's ciphers. Notes tell what could not be read.
type features struct {
	ErrorPage string
	SSL       *sslTermination
	Mappings  []certificateMapping
	Ciphers   []string
	Notes     []string
}

// readFeatures reads them; a termination the load balancer lacks is
// the API's 404, shown as none.
func (c *Console) readFeatures(r *http.Request, s session, path string) features {
	var f features
	note := func(what string, err error) { f.Notes = append(f.Notes, what+" could not be read: "+err.Error()) }
	var ep struct {
		ErrorPage struct {
			Content string `json:"content"`
		} `json:"errorpage"`
	}
	if _, err := c.api.call(r.Context(), r, s.Token, http.MethodGet, path+"/errorpage", nil, &ep); err != nil {
		note("The error page", err)
	}
	f.ErrorPage = ep.ErrorPage.Content
	var st struct {
		SSLTermination *sslTermination `json:"sslTermination"`
	}
	if _, err := c.api.call(r.Context(), r, s.Token, http.MethodGet, path+"/ssltermination", nil, &st); err != nil {
		if fault, ok := err.(*Fault); !ok || fault.Status != http.StatusNotFound {
			note("The SSL termination", err)
		}
		return f
	}
	f.SSL = st.SSLTermination
	var ms struct {
		Mappings []struct {
			Mapping certificateMapping `json:"certificateMapping"`
		} `json:"certificateMappings"`
	}
	if _, err := c.api.call(r.Context(), r, s.Token, http.MethodGet, path+"/ssltermination/certificatemappings", nil, &ms); err != nil {
		note("The certificate mappings", err)
	}
	for _, m := range ms.Mappings {
		f.Mappings = append(f.Mappings, m.Mapping)
	}
	var cs struct {
		Ciphers []struct {
			Name string `json:"name"`
		} `json:"ciphers"`
	}
	if _, err := c.api.call(r.Context(), r, s.Token, http.MethodGet, path+"/ssltermination/ciphers", nil, &cs); err != nil {
		note("The ciphers", err)
	}
	for _, x := range cs.Ciphers {
		f.Ciphers = append(f.Ciphers, x.Name)
	}
	return f
}

// sslFields are the SSL termination form's fields, named as the API's.
var sslFields = []string{"securePort", "enabled", "secureTrafficOnly", "cipherProfile", "certificate", "privatekey", "intermediateCertificate"}

// sslTerminationBody is the form as the API's PUT takes it: the
// certificate, key and intermediates only when pasted (without them the
// PUT changes the other attributes and keeps the stored certificate).
func sslTerminationBody(v url.Values) map[string]any {
	t := map[string]any{
		"securePort":        number(v.Get("securePort")),
		"enabled":           slices.Contains(v["enabled"], "true"),
		"secureTrafficOnly": slices.Contains(v["secureTrafficOnly"], "true"),
	}
	if p := v.Get("cipherProfile"); p != "" {
		t["cipherProfile"] = p
	}
	for _, k := range []string{"certificate", "privatekey", "intermediateCertificate"} {
		if pem := strings.TrimSpace(v.Get(k)); pem != "" {
			t[k] = pem + "\n"
		}
	}
	return t
}

// deletable are the lists whose items the page deletes one at a time,
// and where the API serves each item.
var deletable = map[string]string{
	"nodes":               "/nodes/",
	"accesslist":          "/accesslist/",
	"metadata":            "/metadata/",
	"certificatemappings": "/ssltermination/certificatemappings/",
}

// deleteItem deletes a node, an access-list entry, a metadata item or a
// certificate mapping.
func (c *Console) deleteItem(w http.ResponseWriter, r *http.Request, s session) {
	id, ok := lbID(r)
	sub, known := deletable[r.PathValue("list")]
	item, err := strconv.ParseUint(r.PathValue("item"), 10, 31)
	if !ok || !known || err != nil {
		http.NotFound(w, r)
		return
	}
	target := fmt.Sprintf("%s/loadbalancers/%s%s%d", s.base(), id, sub, item)
	if _, err := c.api.call(r.Context(), r, s.Token, http.MethodDelete, target, nil, nil); err != nil {
		if isSessionEnd(err) {
			c.apiFailed(w, r, &s, err)
			return
		}
		f := refused(r.PathValue("list")+"-delete", r.PostForm, err)
		c.renderDetail(w, r, s, f.Fault.Status, f)
		return
	}
	http.Redirect(w, r, Prefix+"/loadbalancers/"+id, http.StatusSeeOther)
}

// deletePage asks to confirm a load balancer's deletion: a page of its
// own, so that it works without a script.
func (c *Console) deletePage(w http.ResponseWriter, r *http.Request, s session) {
	c.renderDelete(w, r, s, http.StatusOK, nil)
}

func (c *Console) renderDelete(w http.ResponseWriter, r *http.Request, s session, status int, f *form) {
	if _, lb, ok := c.readLB(w, r, s); ok {
		c.render(w, r, status, "delete", &s, map[string]any{"LB": lb, "Form": f})
	}
}

// deleteLoadBalancer deletes the load balancer once confirmed.
func (c *Console) deleteLoadBalancer(w http.ResponseWriter, r *http.Request, s session) {
	id, ok := lbID(r)
	if !ok {
		http.NotFound(w, r)
		return
	}
	if _, err := c.api.call(r.Context(), r, s.Token, http.MethodDelete, s.base()+"/loadbalancers/"+id, nil, nil); err != nil {
		if isSessionEnd(err) {
			c.apiFailed(w, r, &s, err)
			return
		}
		f := refused("delete", r.PostForm, err)
		c.renderDelete(w, r, s, f.Fault.Status, f)
		return
	}
	http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
}
