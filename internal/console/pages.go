package console

import (
	"bytes"
	"cmp"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// form is a form's values and the API's refusal of them, shown beside
// the fields the fault's messages name.
type form struct {
	Name    string
	Values  url.Values
	Fault   *Fault
	ByField map[string][]string // validation messages per field
	Other   []string            // messages that name no field of the form
}

// Value is the value sent, else def.
func (f *form) Value(field, def string) string {
	if f != nil && f.Values.Has(field) {
		return f.Values.Get(field)
	}
	return def
}

// Errors are the messages that name field.
func (f *form) Errors(field string) []string {
	if f == nil {
		return nil
	}
	return f.ByField[field]
}

// refused is form name with values, refused by err; fields are the
// form's fields (messages naming another go to the form's summary).
func refused(name string, values url.Values, err error, fields ...string) *form {
	f := &form{Name: name, Values: values, ByField: map[string][]string{}}
	fault, ok := err.(*Fault)
	if !ok {
		fault = &Fault{Status: http.StatusBadGateway, Message: err.Error()}
	}
	f.Fault = fault
	for _, m := range fault.Messages {
		if k := fieldOf(m); k != "" && slices.Contains(fields, k) {
			f.ByField[k] = append(f.ByField[k], m)
		} else {
			f.Other = append(f.Other, m)
		}
	}
	return f
}

// The choices the forms offer, as the API spells them ("" is none: the
// feature is removed). Protocols and algorithms come from the API's
// catalog.
var choices = map[string][]string{
	"condition":       {"ENABLED", "DRAINING", "DISABLED"},
	"monitorType":     {"", "CONNECT", "HTTP", "HTTPS"},
	"persistenceType": {"", "HTTP_COOKIE", "SOURCE_IP", "SSL_ID"},
	"vipType":         {"PUBLIC", "SERVICENET"},
	"accessType":      {"DENY", "ALLOW"},
	// The reference's cipher profiles (ciphers.rst).
	"cipherProfile": {"default", "CLBCipherPolicy2017-08", "CLBCipherPolicy2019-05"},
}

// fieldView is one labelled input of a form, with the API's messages
// about it.
type fieldView struct {
	ID, Name, Label, Type, Value string
	Options                      []string
	Errors                       []string
}

func parsePages() map[string]*template.Template {
	funcs := template.FuncMap{
		"lower":   strings.ToLower,
		"choices": func(name string) []string { return choices[name] },
		"when": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.UTC().Format("2006-01-02 15:04:05 UTC")
		},
		"formFor": func(f any, name string) *form {
			if ff, ok := f.(*form); ok && ff != nil && ff.Name == name {
				return ff
			}
			return nil
		},
		"field": func(f *form, formName, name, label, kind, def string) fieldView {
			return fieldView{ID: formName + "-" + strings.ReplaceAll(name, ".", "-"), Name: name, Label: label,
				Type: kind, Value: f.Value(name, def), Errors: f.Errors(name)}
		},
		"choice": func(f *form, formName, name, label string, options []string, def string) fieldView {
			return fieldView{ID: formName + "-" + strings.ReplaceAll(name, ".", "-"), Name: name, Label: label,
				Options: options, Value: f.Value(name, def), Errors: f.Errors(name)}
		},
		// check is a checkbox; def is its value when the form was not
		// sent (a bool, or a nil termination: off).
		"check": func(f *form, formName, name, label string, def any) fieldView {
			on, _ := def.(bool)
			if f != nil && f.Values.Has(name) {
				on = slices.Contains(f.Values[name], "true")
			}
			return fieldView{ID: formName + "-" + name, Name: name, Label: label, Type: "checkbox",
				Value: strconv.FormatBool(on), Errors: f.Errors(name)}
		},
		// area is a textarea; a secret one (a private key) is never
		// written back into the page, even refused.
		"area": func(f *form, formName, name, label, def string, secret bool) fieldView {
			v := f.Value(name, def)
			if secret {
				v = ""
			}
			return fieldView{ID: formName + "-" + name, Name: name, Label: label, Type: "textarea", Value: v, Errors: f.Errors(name)}
		},
		"deleteButton": func(prefix string, lb int, list string, item int, what, csrf string) map[string]any {
			return map[string]any{"Prefix": prefix, "LB": lb, "List": list, "Item": item, "What": what, "CSRF": csrf}
		},
		"viewBox": func() string { return fmt.Sprintf("0 0 %d %d", viewWidth, viewHeight) },
		"dims": func() map[string]float64 {
			return map[string]float64{"left": plotLeft, "top": plotTop, "right": plotLeft + plotWidth,
				"bottom": plotTop + plotHeight, "mid": plotTop + plotHeight/2, "labelY": plotTop + plotHeight + 18}
		},
	}
	base := template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html"))
	pages := map[string]*template.Template{}
	for _, name := range []string{"signin", "list", "new", "detail", "error", "delete"} {
		pages[name] = template.Must(template.Must(base.Clone()).ParseFS(templateFS, "templates/"+name+".html"))
	}
	return pages
}

// render writes page with data; s is nil on the sign-in page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, page string, s *session, data map[string]any) {
	if data == nil {
		data = map[string]any{}
	}
	data["Session"] = s
	if s != nil {
		data["CSRF"] = s.csrf()
	}
	data["Prefix"] = Prefix
	if c.refresh < 0 {
		delete(data, "LiveURL")
	}
	data["RefreshMS"] = c.refresh.Milliseconds()
	var buf bytes.Buffer
	if err := c.pages[page].ExecuteTemplate(&buf, "layout", data); err != nil {
		c.log.Error("console: render", "page", page, "err", err)
		http.Error(w, "the console could not draw this page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

func (c *Console) signInPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := readSession(r, c.now()); ok {
		http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
		return
	}
	c.render(w, r, http.StatusOK, "signin", nil, map[string]any{"Next": r.URL.Query().Get("next")})
}

// signIn asks the identity endpoint for a token with the user name and
// API key, as the CLI and the SDKs do.
func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	_ = r.ParseForm()
	user, key := strings.TrimSpace(r.PostForm.Get("username")), strings.TrimSpace(r.PostForm.Get("apiKey"))
	var out struct {
		Access struct {
			Token struct {
				ID      string    `json:"id"`
				Expires time.Time `json:"expires"`
				Tenant  struct {
					ID string `json:"id"`
				} `json:"tenant"`
			} `json:"token"`
		} `json:"access"`
	}
	body := map[string]any{"auth": map[string]any{"RAX-KSKEY:apiKeyCredentials": map[string]string{"username": user, "apiKey": key}}}
	_, err := c.api.call(r.Context(), r, "", http.MethodPost, "/v2.0/tokens", body, &out)
	if err == nil && (out.Access.Token.ID == "" || out.Access.Token.Tenant.ID == "") {
		err = &Fault{Status: http.StatusBadGateway, Message: "The identity endpoint answered no token."}
	}
	if err != nil {
		values := url.Values{"username": {user}}
		f := refused("signin", values, err, "username", "apiKey")
		status := f.Fault.Status
		c.render(w, r, status, "signin", nil, map[string]any{"Form": f, "Next": r.PostForm.Get("next")})
		return
	}
	setSession(w, r, session{Token: out.Access.Token.ID, Account: out.Access.Token.Tenant.ID, Username: user, Expires: out.Access.Token.Expires})
	next := r.PostForm.Get("next")
	if !strings.HasPrefix(next, Prefix+"/") || strings.HasPrefix(next, "//") {
		next = Prefix + "/"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *Console) signOut(w http.ResponseWriter, r *http.Request, _ session) {
	clearSession(w, r)
	http.Redirect(w, r, Prefix+"/signin", http.StatusSeeOther)
}

// refreshHeader marks the script's live refreshes.
const refreshHeader = "X-Console-Refresh"

// loadBalancer is what the console shows of the API's load balancer.
type loadBalancer struct {
	ID                int       `json:"id"`
	Name              string    `json:"name"`
	Protocol          string    `json:"protocol"`
	Port              int       `json:"port"`
	Algorithm         string    `json:"algorithm"`
	Status            string    `json:"status"`
	StatusDescription string    `json:"statusDescription"`
	Timeout           int       `json:"timeout"`
	NodeCount         int       `json:"nodeCount"`
	VirtualIPs        []vip     `json:"virtualIps"`
	Nodes             []node    `json:"nodes"`
	Created           timestamp `json:"created"`
	Updated           timestamp `json:"updated"`
	HealthMonitor     *struct {
		Type                       string `json:"type"`
		Delay                      int    `json:"delay"`
		Timeout                    int    `json:"timeout"`
		AttemptsBeforeDeactivation int    `json:"attemptsBeforeDeactivation"`
		Path                       string `json:"path"`
		StatusRegex                string `json:"statusRegex"`
		BodyRegex                  string `json:"bodyRegex"`
	} `json:"healthMonitor"`
	SessionPersistence *struct {
		PersistenceType string `json:"persistenceType"`
	} `json:"sessionPersistence"`
	ConnectionLogging struct {
		Enabled bool `json:"enabled"`
	} `json:"connectionLogging"`
	ContentCaching struct {
		Enabled bool `json:"enabled"`
	} `json:"contentCaching"`
	ConnectionThrottle *struct {
		MaxConnections    int `json:"maxConnections"`
		MinConnections    int `json:"minConnections"`
		MaxConnectionRate int `json:"maxConnectionRate"`
		RateInterval      int `json:"rateInterval"`
	} `json:"connectionThrottle"`
	AccessList []struct {
		ID      int    `json:"id"`
		Address string `json:"address"`
		Type    string `json:"type"`
	} `json:"accessList"`
	Metadata []struct {
		ID    int    `json:"id"`
		Key   string `json:"key"`
		Value string `json:"value"`
	} `json:"metadata"`
}

type vip struct {
	ID        int    `json:"id"`
	Address   string `json:"address"`
	Type      string `json:"type"`
	IPVersion string `json:"ipVersion"`
}

type node struct {
	ID        int    `json:"id"`
	Address   string `json:"address"`
	Port      int    `json:"port"`
	Condition string `json:"condition"`
	Status    string `json:"status"`
	Type      string `json:"type"`
	Weight    int    `json:"weight"`
}

type timestamp struct {
	Time time.Time `json:"time"`
}

type nodeEvent struct {
	ID              int       `json:"id"`
	NodeID          int       `json:"nodeId"`
	Title           string    `json:"title"`
	Description     string    `json:"description"`
	DetailedMessage string    `json:"detailedMessage"`
	Severity        string    `json:"severity"`
	Created         time.Time `json:"created"`
}

func (c *Console) listPage(w http.ResponseWriter, r *http.Request, s session) {
	var out struct {
		LoadBalancers []loadBalancer `json:"loadBalancers"`
	}
	if _, err := c.api.call(r.Context(), r, s.Token, http.MethodGet, s.base()+"/loadbalancers", nil, &out); err != nil {
		c.apiFailed(w, r, &s, err)
		return
	}
	c.render(w, r, http.StatusOK, "list", &s, map[string]any{"LoadBalancers": out.LoadBalancers, "LiveURL": Prefix + "/"})
}

// catalog is what the create form offers: the API's protocols and
// algorithms.
func (c *Console) catalog(r *http.Request, s session, withProtocols bool) (protocols, algorithms []string) {
	var p struct {
		Protocols []struct {
			Name string `json:"name"`
		} `json:"protocols"`
	}
	var a struct {
		Algorithms []struct {
			Name string `json:"name"`
		} `json:"algorithms"`
	}
	if withProtocols {
		if _, err := c.api.call(r.Context(), r, s.Token, http.MethodGet, s.base()+"/loadbalancers/protocols", nil, &p); err == nil {
			for _, x := range p.Protocols {
				protocols = append(protocols, x.Name)
			}
		}
	}
	if _, err := c.api.call(r.Context(), r, s.Token, http.MethodGet, s.base()+"/loadbalancers/algorithms", nil, &a); err == nil {
		for _, x := range a.Algorithms {
			algorithms = append(algorithms, x.Name)
		}
	}
	return protocols, algorithms
}

func (c *Console) newPage(w http.ResponseWriter, r *http.Request, s session) {
	c.renderNew(w, r, s, http.StatusOK, nil)
}

func (c *Console) renderNew(w http.ResponseWriter, r *http.Request, s session, status int, f *form) {
	protocols, algorithms := c.catalog(r, s, true)
	c.render(w, r, status, "new", &s, map[string]any{"Form": f, "Protocols": protocols, "Algorithms": algorithms})
}

// number is a form's numeric field as the API takes it: a number when it
// is one, else the text as typed (the API's fault then names the field).
func number(v string) any {
	if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
		return n
	}
	return v
}

func (c *Console) create(w http.ResponseWriter, r *http.Request, s session) {
	v := r.PostForm
	lb := map[string]any{
		"name": v.Get("name"), "protocol": v.Get("protocol"), "port": number(v.Get("port")),
		"virtualIps": []any{map[string]any{"type": v.Get("vip.type")}},
	}
	if a := v.Get("algorithm"); a != "" {
		lb["algorithm"] = a
	}
	if addr := strings.TrimSpace(v.Get("node.address")); addr != "" || v.Get("node.port") != "" {
		lb["nodes"] = []any{map[string]any{"address": addr, "port": number(v.Get("node.port")), "condition": "ENABLED"}}
	}
	var out struct {
		LoadBalancer loadBalancer `json:"loadBalancer"`
	}
	if _, err := c.api.call(r.Context(), r, s.Token, http.MethodPost, s.base()+"/loadbalancers", map[string]any{"loadBalancer": lb}, &out); err != nil {
		if isSessionEnd(err) {
			c.apiFailed(w, r, &s, err)
			return
		}
		f := refused("create", v, err, "name", "protocol", "port", "algorithm", "vip.type", "node.address", "node.port")
		c.renderNew(w, r, s, f.Fault.Status, f)
		return
	}
	http.Redirect(w, r, fmt.Sprintf("%s/loadbalancers/%d", Prefix, out.LoadBalancer.ID), http.StatusSeeOther)
}

func isSessionEnd(err error) bool {
	f, ok := err.(*Fault)
	return ok && f.Status == http.StatusUnauthorized
}

func lbID(r *http.Request) (string, bool) {
	id := r.PathValue("id")
	n, err := strconv.ParseUint(id, 10, 31)
	return id, err == nil && n > 0
}

func (c *Console) detailPage(w http.ResponseWriter, r *http.Request, s session) {
	c.renderDetail(w, r, s, http.StatusOK, nil)
}

// readLB reads the load balancer the URL names; when it cannot, it
// answers the browser and ok is false.
func (c *Console) readLB(w http.ResponseWriter, r *http.Request, s session) (id string, lb loadBalancer, ok bool) {
	id, ok = lbID(r)
	if !ok {
		c.apiFailed(w, r, &s, &Fault{Status: http.StatusNotFound, Message: "Load balancer not found"})
		return id, lb, false
	}
	var out struct {
		LoadBalancer loadBalancer `json:"loadBalancer"`
	}
	if _, err := c.api.call(r.Context(), r, s.Token, http.MethodGet, s.base()+"/loadbalancers/"+id, nil, &out); err != nil {
		c.apiFailed(w, r, &s, err)
		return id, lb, false
	}
	return id, out.LoadBalancer, true
}

// renderDetail draws a load balancer's page, with f the refused form.
func (c *Console) renderDetail(w http.ResponseWriter, r *http.Request, s session, status int, f *form) {
	id, lb, ok := c.readLB(w, r, s)
	if !ok {
		return
	}
	path := s.base() + "/loadbalancers/" + id
	var ev struct {
		Events []nodeEvent `json:"nodeServiceEvents"`
	}
	if _, err := c.api.call(r.Context(), r, s.Token, http.MethodGet, path+"/nodes/events", nil, &ev); err != nil {
		c.log.Debug("console: node events", "err", err)
	}
	slices.SortFunc(ev.Events, func(a, b nodeEvent) int { return cmp.Compare(b.ID, a.ID) })
	if len(ev.Events) > 10 {
		ev.Events = ev.Events[:10]
	}
	window := r.URL.Query().Get("window")
	if _, ok := windows[window]; !ok {
		window = "hour"
	}
	plots := c.plots(r, s, path, window)
	plots.Windows = []string{"hour", "day"}
	// A live refresh replaces only the live parts: the forms' choices
	// need not be read again.
	var (
		algorithms []string
		feats      features
	)
	if r.Header.Get(refreshHeader) == "" {
		_, algorithms = c.catalog(r, s, false)
		feats = c.readFeatures(r, s, path)
	}
	data := map[string]any{"LB": lb, "Events": ev.Events, "Plots": plots, "Now": c.now(),
		"LiveURL":    fmt.Sprintf("%s/loadbalancers/%s?window=%s", Prefix, id, window),
		"Algorithms": algorithms, "Features": feats}
	if f != nil {
		data["Form"] = f
		if strings.HasPrefix(f.Name, "node-") || f.Name == "nodes-delete" {
			data["NodeFault"] = f
		}
	}
	c.render(w, r, status, "detail", &s, data)
}

// plots reads the statistics history of the window; where it is not
// served (404), it samples GET /stats instead.
func (c *Console) plots(r *http.Request, s session, path, window string) plotSet {
	now := c.now()
	var raw rawJSON
	_, err := c.api.call(r.Context(), r, s.Token, http.MethodGet, path+"/stats/history?window="+window, nil, &raw)
	if err == nil {
		if h, perr := ParseHistory(raw); perr == nil {
			return plotsFromHistory(h, now)
		}
	}
	if f, ok := err.(*Fault); err != nil && (!ok || f.Status != http.StatusNotFound) {
		return plotSet{Window: window, Note: "The statistics history could not be read: " + err.Error()}
	}
	var st statsCounters
	if _, err := c.api.call(r.Context(), r, s.Token, http.MethodGet, path+"/stats", nil, &st); err != nil {
		return plotSet{Window: window, Note: "The statistics could not be read: " + err.Error()}
	}
	readings := c.samples.add(s.Account+"/"+r.PathValue("id"), now, st, windows[window])
	return plotsFromSamples(window, readings, now)
}

// rawJSON keeps an answer as it came.
type rawJSON []byte

func (j *rawJSON) UnmarshalJSON(b []byte) error {
	*j = append((*j)[:0], b...)
	return nil
}

// edit applies one of the detail page's forms.
func (c *Console) edit(w http.ResponseWriter, r *http.Request, s session) {
	id, ok := lbID(r)
	if !ok {
		http.NotFound(w, r)
		return
	}
	path := s.base() + "/loadbalancers/" + id
	v := r.PostForm
	name := r.PathValue("form")
	var (
		method = http.MethodPut
		target string
		body   any
		fields []string
	)
	switch name {
	case "settings":
		target, fields = path, []string{"name", "algorithm", "timeout"}
		body = map[string]any{"loadBalancer": map[string]any{"name": v.Get("name"), "algorithm": v.Get("algorithm"), "timeout": number(v.Get("timeout"))}}
	case "nodes":
		target, method, fields = path+"/nodes", http.MethodPost, []string{"node.address", "node.port", "node.condition", "node.weight"}
		n := map[string]any{"address": strings.TrimSpace(v.Get("node.address")), "port": number(v.Get("node.port")), "condition": v.Get("node.condition")}
		if wt := v.Get("node.weight"); wt != "" {
			n["weight"] = number(wt)
		}
		body = map[string]any{"nodes": []any{n}}
	case "healthmonitor":
		target = path + "/healthmonitor"
		fields = []string{"type", "delay", "timeout", "attemptsBeforeDeactivation", "path", "statusRegex", "bodyRegex"}
		if v.Get("type") == "" {
			method = http.MethodDelete
			break
		}
		hm := map[string]any{"type": v.Get("type"), "delay": number(v.Get("delay")), "timeout": number(v.Get("timeout")),
			"attemptsBeforeDeactivation": number(v.Get("attemptsBeforeDeactivation"))}
		if v.Get("type") != "CONNECT" {
			hm["path"], hm["statusRegex"], hm["bodyRegex"] = v.Get("path"), v.Get("statusRegex"), v.Get("bodyRegex")
		}
		body = map[string]any{"healthMonitor": hm}
	case "sessionpersistence":
		target, fields = path+"/sessionpersistence", []string{"persistenceType"}
		if v.Get("persistenceType") == "" {
			method = http.MethodDelete
			break
		}
		body = map[string]any{"sessionPersistence": map[string]any{"persistenceType": v.Get("persistenceType")}}
	case "connectionlogging":
		target, fields = path+"/connectionlogging", []string{"enabled"}
		body = map[string]any{"connectionLogging": map[string]any{"enabled": v.Get("enabled") == "true"}}
	case "connectionthrottle":
		target = path + "/connectionthrottle"
		fields = []string{"maxConnections", "minConnections", "maxConnectionRate", "rateInterval"}
		if v.Get("remove") != "" {
			method = http.MethodDelete
			break
		}
		body = map[string]any{"connectionThrottle": map[string]any{
			"maxConnections": number(v.Get("maxConnections")), "minConnections": number(v.Get("minConnections")),
			"maxConnectionRate": number(v.Get("maxConnectionRate")), "rateInterval": number(v.Get("rateInterval"))}}
	case "accesslist":
		target, method, fields = path+"/accesslist", http.MethodPost, []string{"address", "type"}
		body = map[string]any{"accessList": []any{map[string]any{"address": strings.TrimSpace(v.Get("address")), "type": v.Get("type")}}}
	case "errorpage":
		target, fields = path+"/errorpage", []string{"content"}
		if v.Get("reset") != "" {
			method = http.MethodDelete
			break
		}
		body = map[string]any{"errorpage": map[string]any{"content": v.Get("content")}}
	case "ssltermination":
		target, fields = path+"/ssltermination", sslFields
		if v.Get("remove") != "" {
			method = http.MethodDelete
			break
		}
		body = map[string]any{"sslTermination": sslTerminationBody(v)}
	case "certificatemappings":
		target, method = path+"/ssltermination/certificatemappings", http.MethodPost
		fields = []string{"hostName", "certificate", "privateKey", "intermediateCertificate"}
		m := map[string]any{"hostName": strings.TrimSpace(v.Get("hostName")), "certificate": v.Get("certificate"), "privateKey": v.Get("privateKey")}
		if in := strings.TrimSpace(v.Get("intermediateCertificate")); in != "" {
			m["intermediateCertificate"] = in
		}
		body = map[string]any{"certificateMapping": m}
	case "metadata":
		target, method, fields = path+"/metadata", http.MethodPost, []string{"key", "value"}
		body = map[string]any{"metadata": []any{map[string]any{"key": v.Get("key"), "value": v.Get("value")}}}
	default:
		http.NotFound(w, r)
		return
	}
	if _, err := c.api.call(r.Context(), r, s.Token, method, target, body, nil); err != nil {
		if isSessionEnd(err) {
			c.apiFailed(w, r, &s, err)
			return
		}
		f := refused(name, v, err, fields...)
		c.renderDetail(w, r, s, f.Fault.Status, f)
		return
	}
	http.Redirect(w, r, Prefix+"/loadbalancers/"+id, http.StatusSeeOther)
}

// nodeCondition drains, disables or enables a node.
func (c *Console) nodeCondition(w http.ResponseWriter, r *http.Request, s session) {
	id, ok := lbID(r)
	nodeID, err := strconv.ParseUint(r.PathValue("node"), 10, 31)
	if !ok || err != nil {
		http.NotFound(w, r)
		return
	}
	v := r.PostForm
	target := fmt.Sprintf("%s/loadbalancers/%s/nodes/%d", s.base(), id, nodeID)
	body := map[string]any{"node": map[string]any{"condition": v.Get("condition")}}
	if _, err := c.api.call(r.Context(), r, s.Token, http.MethodPut, target, body, nil); err != nil {
		if isSessionEnd(err) {
			c.apiFailed(w, r, &s, err)
			return
		}
		f := refused(fmt.Sprintf("node-%d", nodeID), v, err, "node.condition")
		c.renderDetail(w, r, s, f.Fault.Status, f)
		return
	}
	http.Redirect(w, r, Prefix+"/loadbalancers/"+id, http.StatusSeeOther)
}
