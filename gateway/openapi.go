package gateway

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
	"github.com/getkin/kin-openapi/openapi3"
)

// OpenAPIPath is where the API description is served.
const OpenAPIPath = "/openapi.json"

// swagger is protoc-gen-openapiv2's description of the lbaas.v1 HTTP
// mapping (make generate writes it; proto/lbaas/v1/http.yaml is the
// mapping). It knows the paths, parameters and message shapes, but not
// what the gateway adds, which OpenAPI adds to it.
//
//go:embed apidoc/lbaas.swagger.json
var swagger []byte

var openAPI = sync.OnceValues(func() ([]byte, error) {
	doc, err := OpenAPI()
	if err != nil {
		return nil, err
	}
	return json.MarshalIndent(doc, "", "  ")
})

// OpenAPIHandler serves the OpenAPI 3 description of the API.
func OpenAPIHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := openAPI()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
}

// restNames are the REST names of query parameters whose JSON name differs.
var restNames = map[string]string{"changesSince": "changes-since"}

// OpenAPI builds the OpenAPI 3 description of the API: the generated
// description of the gRPC mapping, converted to OpenAPI 3, with what the
// gateway adds — the reference's success codes (202 for the asynchronous
// changes) and empty bodies, the faults in JSON and XML, XML bodies, the
// Atom feed, the REST names of parameters, the identity endpoint and this
// description's own path.
func OpenAPI() (*openapi3.T, error) {
	var v2 openapi2.T
	if err := json.Unmarshal(swagger, &v2); err != nil {
		return nil, fmt.Errorf("openapi: generated description: %w", err)
	}
	doc, err := openapi2conv.ToV3(&v2)
	if err != nil {
		return nil, fmt.Errorf("openapi: convert to OpenAPI 3: %w", err)
	}
	doc.Info = &openapi3.Info{
		Title:   "Cloud Load Balancers API (Rackspace v1.0 compatible)",
		Version: "1.0",
		Description: "The Rackspace Cloud Load Balancers v1.0 REST API as lbaasd serves it. " +
			"Every request but POST /v2.0/tokens carries a token in X-Auth-Token. Bodies are JSON " +
			"(application/json, the default) or the reference's XML (application/xml); a response's " +
			"format is chosen by a .json, .xml or .atom suffix of the path, or else by the Accept header " +
			"(406 when neither can be served). Content-Encoding: gzip request bodies and Accept-Encoding: gzip " +
			"answers are supported.",
	}
	doc.Servers = openapi3.Servers{{URL: "/"}}
	for _, schema := range doc.Components.Schemas {
		annotateXML(schema.Value)
	}
	doc.Components.Schemas["Fault"] = openapi3.NewSchemaRef("", faultSchema())

	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			rpc := "/lbaas.v1." + strings.Replace(op.OperationID, "_", "/", 1)
			if err := adjustOperation(doc, path, method, rpc, op); err != nil {
				return nil, err
			}
		}
	}
	addIdentity(doc)
	doc.Paths.Set(OpenAPIPath, &openapi3.PathItem{Get: &openapi3.Operation{
		OperationID: "OpenAPI",
		Summary:     "This description of the API.",
		Responses: openapi3.NewResponses(openapi3.WithStatus(200, &openapi3.ResponseRef{Value: openapi3.NewResponse().
			WithDescription("The OpenAPI 3 description.").WithJSONSchema(openapi3.NewObjectSchema())})),
	}})
	return doc, nil
}

func adjustOperation(doc *openapi3.T, path, method, rpc string, op *openapi3.Operation) error {
	ok := op.Responses.Value("200")
	if ok == nil || ok.Value == nil {
		return fmt.Errorf("openapi: %s %s has no 200 response", method, path)
	}
	op.Responses.Delete("200")
	success := http.StatusOK
	if code, found := successCodes[rpc]; found {
		success = code
	}
	desc := "Success."
	if success == http.StatusAccepted {
		desc = "Accepted: the change is applied asynchronously (the load balancer is PENDING_UPDATE, BUILD or PENDING_DELETE until it is)."
	}
	ok.Value.Description = &desc
	if mt := ok.Value.Content.Get(mimeJSON); mt != nil && isEmptyObject(mt.Schema) {
		ok.Value.Content = nil // google.protobuf.Empty: no body at all
	} else if mt != nil {
		ok.Value.Content[mimeXML] = &openapi3.MediaType{Schema: xmlRoot(doc, mt.Schema)}
		if strings.HasSuffix(path, "/nodes/events") {
			ok.Value.Content[mimeAtom] = &openapi3.MediaType{Schema: openapi3.NewStringSchema().NewRef()}
		}
	}
	op.Responses.Set(strconv.Itoa(success), ok)

	faults := []int{400, 401, 403, 404, 406, 413, 500, 503}
	if method != http.MethodGet {
		faults = append(faults, 422)
	}
	if op.RequestBody != nil && op.RequestBody.Value != nil {
		faults = append(faults, 415)
		body := op.RequestBody.Value
		if mt := body.Content.Get(mimeJSON); mt != nil {
			body.Content[mimeXML] = &openapi3.MediaType{Schema: xmlRoot(doc, mt.Schema)}
			mt.Schema = unwrappable(doc, mt.Schema)
		}
	}
	sort.Ints(faults)
	for _, code := range faults {
		op.Responses.Set(strconv.Itoa(code), faultResponse(code))
	}
	for _, p := range op.Parameters {
		if p.Value != nil && p.Value.In == "query" {
			if rest, ok := restNames[p.Value.Name]; ok {
				p.Value.Name = rest
			}
		}
	}
	return nil
}

// annotateXML describes the XML mapping of xml.go on a message's schema:
// scalars are attributes (long text aside), lists are wrapped, their
// items named in the singular.
func annotateXML(s *openapi3.Schema) {
	if s == nil {
		return
	}
	s.XML = &openapi3.XML{Namespace: xmlNamespace}
	for name, prop := range s.Properties {
		switch {
		case prop.Ref != "" || prop.Value == nil:
		case prop.Value.Type.Is("array"):
			prop.Value.XML = &openapi3.XML{Wrapped: true}
			prop.Value.Items = xmlNamed(prop.Value.Items, itemName(name))
		case prop.Value.Type.Is("object") || textFields[name]:
		case name == "value" && s.Properties["key"] != nil:
			prop.Value.Description = "The element's text: <meta id=\"1\" key=\"color\">red</meta>."
		default:
			prop.Value.XML = &openapi3.XML{Attribute: true}
		}
	}
}

// xmlNamed is schema as an element of that name (a reference cannot
// carry an xml name of its own in OpenAPI 3.0: it goes through allOf).
func xmlNamed(schema *openapi3.SchemaRef, name string) *openapi3.SchemaRef {
	if schema == nil {
		return nil
	}
	if schema.Ref == "" {
		v := *schema.Value
		v.XML = &openapi3.XML{Name: name}
		return v.NewRef()
	}
	return (&openapi3.Schema{AllOf: openapi3.SchemaRefs{schema}, XML: &openapi3.XML{Name: name, Namespace: xmlNamespace}}).NewRef()
}

// resolved is the schema a reference names among the components, or the
// inline schema (nil when neither is there).
func resolved(doc *openapi3.T, schema *openapi3.SchemaRef) *openapi3.Schema {
	if schema.Ref != "" {
		if c := doc.Components.Schemas[strings.TrimPrefix(schema.Ref, "#/components/schemas/")]; c != nil {
			return c.Value
		}
	}
	return schema.Value
}

// xmlRoot is the XML body of a JSON body: the message's one field (its
// links aside) is the root element (xml.go).
func xmlRoot(doc *openapi3.T, schema *openapi3.SchemaRef) *openapi3.SchemaRef {
	target := resolved(doc, schema)
	if target == nil {
		return schema
	}
	var root string
	for name := range target.Properties {
		if name == "links" {
			continue
		}
		if root != "" {
			return schema
		}
		root = name
	}
	prop := target.Properties[root]
	if root == "" || prop == nil {
		return schema
	}
	if prop.Ref != "" {
		return xmlNamed(prop, root)
	}
	if prop.Value != nil && prop.Value.Type.Is("array") {
		list := *prop.Value
		list.XML = &openapi3.XML{Name: root, Namespace: xmlNamespace, Wrapped: true}
		return list.NewRef()
	}
	return schema
}

// unwrappable describes a JSON request body as the gateway takes it
// (bodies.go): the wrapped form, or the object of one of its wrappers
// without the wrapper ({"name": ...} for {"loadBalancer": {"name": ...}}).
func unwrappable(doc *openapi3.T, schema *openapi3.SchemaRef) *openapi3.SchemaRef {
	target := resolved(doc, schema)
	if target == nil {
		return schema
	}
	names := make([]string, 0, len(target.Properties))
	for name, prop := range target.Properties {
		if prop.Ref != "" {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return schema
	}
	sort.Strings(names)
	forms := openapi3.SchemaRefs{schema}
	for _, name := range names {
		forms = append(forms, openapi3.NewSchemaRef(target.Properties[name].Ref, nil))
	}
	return (&openapi3.Schema{AnyOf: forms, Description: "The body as the reference shows it, or the object of its " +
		strings.Join(names, " / ") + " without that wrapper, as some SDKs send it. Booleans may also be sent as " +
		`the strings "true" and "false", integers as strings of digits.`}).NewRef()
}

func isEmptyObject(s *openapi3.SchemaRef) bool {
	return s != nil && s.Ref == "" && s.Value != nil && s.Value.Type.Is("object") && len(s.Value.Properties) == 0
}

func faultSchema() *openapi3.Schema {
	messages := openapi3.NewArraySchema().WithItems(openapi3.NewStringSchema())
	s := openapi3.NewObjectSchema().
		WithProperty("code", openapi3.NewIntegerSchema()).
		WithProperty("message", openapi3.NewStringSchema()).
		WithProperty("details", openapi3.NewStringSchema()).
		WithProperty("validationErrors", openapi3.NewObjectSchema().WithProperty("messages", messages))
	s.WithProperty("retryAfter", openapi3.NewDateTimeSchema())
	s.Properties["retryAfter"].Value.XML = &openapi3.XML{Attribute: true}
	s.Required = []string{"code", "message"}
	s.Properties["code"].Value.XML = &openapi3.XML{Attribute: true}
	messages.Items.Value.XML = &openapi3.XML{Name: "message"}
	s.Description = "A Rackspace fault. In XML the root element names the fault (badRequest, itemNotFound, " +
		"forbidden, overLimit, immutableEntity, unprocessableEntity, outOfVirtualIps, loadBalancerFault, serviceUnavailable) " +
		"and code is an attribute; validationErrors holds one <message> per invalid field."
	return s
}

var faultDescriptions = map[int]string{
	400: "badRequest: the body or a parameter is invalid; validationErrors names each field.",
	401: "unauthorized: no valid token (no body).",
	403: "forbidden: the user's roles do not allow this method (lbaas:observer reads only; lbaas:creator does not delete).",
	404: "itemNotFound (also a resource of another account).",
	406: "No format of the Accept header (or the path's suffix) can be served.",
	413: "overLimit: an absolute limit would be exceeded, or a rate limit was reached (Retry-After says when to retry; retryAfter in the body).",
	415: "The body's Content-Type or Content-Encoding is not supported.",
	422: "immutableEntity or unprocessableEntity: the load balancer is busy with an earlier change.",
	500: "loadBalancerFault or outOfVirtualIps.",
	503: "serviceUnavailable.",
}

func faultResponse(code int) *openapi3.ResponseRef {
	r := openapi3.NewResponse().WithDescription(faultDescriptions[code])
	if code != http.StatusUnauthorized {
		ref := &openapi3.SchemaRef{Ref: "#/components/schemas/Fault"}
		r.Content = openapi3.Content{mimeJSON: {Schema: ref}, mimeXML: {Schema: ref}}
	}
	return &openapi3.ResponseRef{Value: r}
}

// addIdentity describes POST /v2.0/tokens (identity.go).
func addIdentity(doc *openapi3.T) {
	str := openapi3.NewStringSchema
	creds := func(secret string) *openapi3.Schema {
		return openapi3.NewObjectSchema().WithProperty("username", str()).WithProperty(secret, str())
	}
	auth := openapi3.NewObjectSchema().
		WithProperty("RAX-KSKEY:apiKeyCredentials", creds("apiKey")).
		WithProperty("passwordCredentials", creds("password")).
		WithProperty("tenantName", str()).
		WithProperty("tenantId", str())
	request := openapi3.NewObjectSchema().WithProperty("auth", auth)
	token := openapi3.NewObjectSchema().
		WithProperty("id", str()).
		WithProperty("expires", openapi3.NewDateTimeSchema()).
		WithProperty("tenant", openapi3.NewObjectSchema().WithProperty("id", str()).WithProperty("name", str()))
	endpoint := openapi3.NewObjectSchema().
		WithProperty("publicURL", str()).WithProperty("region", str()).WithProperty("tenantId", str())
	service := openapi3.NewObjectSchema().
		WithProperty("name", str()).WithProperty("type", str()).
		WithProperty("endpoints", openapi3.NewArraySchema().WithItems(endpoint))
	access := openapi3.NewObjectSchema().
		WithProperty("token", token).
		WithProperty("serviceCatalog", openapi3.NewArraySchema().WithItems(service)).
		WithProperty("user", openapi3.NewObjectSchema().WithProperty("id", str()).WithProperty("name", str()).
			WithProperty("roles", openapi3.NewArraySchema().WithItems(openapi3.NewObjectSchema().
				WithProperty("id", str()).WithProperty("name", str()).WithProperty("tenantId", str()))))
	identityFault := openapi3.NewObjectSchema().WithAdditionalProperties(openapi3.NewObjectSchema().
		WithProperty("code", openapi3.NewIntegerSchema()).WithProperty("message", str()))
	faultOf := func(desc string) *openapi3.ResponseRef {
		return &openapi3.ResponseRef{Value: openapi3.NewResponse().WithDescription(desc).WithJSONSchema(identityFault)}
	}
	doc.Paths.Set("/v2.0/tokens", &openapi3.PathItem{Post: &openapi3.Operation{
		OperationID: "Identity_CreateToken",
		Summary:     "A token for an API key or password (Rackspace Cloud Identity v2.0), valid for the server's --token-ttl.",
		Tags:        []string{"Identity"},
		RequestBody: &openapi3.RequestBodyRef{Value: openapi3.NewRequestBody().WithRequired(true).WithJSONSchema(request)},
		Responses: openapi3.NewResponses(
			openapi3.WithStatus(200, &openapi3.ResponseRef{Value: openapi3.NewResponse().
				WithDescription("The token, and the service catalog with this API's endpoint.").
				WithJSONSchema(openapi3.NewObjectSchema().WithProperty("access", access))}),
			openapi3.WithStatus(400, faultOf("badRequest: the body is not a credentials request.")),
			openapi3.WithStatus(401, faultOf("unauthorized: unknown user or wrong key or password.")),
			openapi3.WithStatus(405, faultOf("badMethod: only POST.")),
		),
	}})
}
