package gateway

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	lbaasv1 "github.com/openlbaas/lbaas/gen/lbaas/v1"
)

// faultBody is the Rackspace fault, in JSON and in XML
// (general-api-info/faults.rst): in XML the root element names the fault
// and the code is an attribute.
type faultBody struct {
	XMLName          xml.Name          `json:"-"`
	Namespace        string            `json:"-" xml:"xmlns,attr"`
	Code             uint32            `json:"code" xml:"code,attr"`
	Message          string            `json:"message" xml:"message"`
	Details          string            `json:"details,omitempty" xml:"details,omitempty"`
	ValidationErrors *validationErrors `json:"validationErrors,omitempty" xml:"validationErrors,omitempty"`
	// RetryAfter is when a rate-limited request may be sent again
	// (ISO 8601, as the reference's overLimit fault gives it).
	RetryAfter string `json:"retryAfter,omitempty" xml:"retryAfter,attr,omitempty"`
}

type validationErrors struct {
	Messages []string `json:"messages" xml:"message"`
}

// pathParams are the path parameters as the REST API names them.
var pathParams = strings.NewReplacer(
	"load_balancer_id", "loadBalancerId", "node_id", "nodeId", "virtual_ip_id", "virtualIpId",
	"changes_since", "changes-since", "network_item_id", "networkItemId", "meta_id", "metaId",
)

// faultOf finds the Rackspace fault a service attached to its status, or
// derives one from the status code (errors raised by the gateway itself:
// undecodable bodies, malformed path or query parameters).
func faultOf(st *status.Status) *lbaasv1.Fault {
	for _, d := range st.Details() {
		if f, ok := d.(*lbaasv1.Fault); ok {
			return f
		}
	}
	msg := pathParams.Replace(st.Message())
	switch st.Code() {
	case codes.InvalidArgument:
		if strings.Contains(msg, "type mismatch, parameter:") && strings.Contains(msg, "value out of range") {
			// An id too large to exist names no object.
			return &lbaasv1.Fault{Code: 404, Message: "Object not Found"}
		}
		return &lbaasv1.Fault{Code: 400, Message: "Validation Failure", Details: "The object is not valid",
			ValidationErrors: &lbaasv1.ValidationErrors{Messages: []string{msg}}}
	case codes.NotFound:
		return &lbaasv1.Fault{Code: 404, Message: msg}
	case codes.Unauthenticated:
		return &lbaasv1.Fault{Code: 401, Message: msg}
	case codes.PermissionDenied:
		return &lbaasv1.Fault{Code: 403, Message: msg}
	case codes.ResourceExhausted:
		return &lbaasv1.Fault{Code: 413, Message: msg}
	case codes.FailedPrecondition:
		return &lbaasv1.Fault{Code: 422, Message: msg}
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		return &lbaasv1.Fault{Code: 503, Message: "The Load balancing service is currently not available"}
	case codes.Unimplemented:
		return &lbaasv1.Fault{Code: 501, Message: "Not implemented"}
	}
	return &lbaasv1.Fault{Code: 500, Message: "An unknown exception has occurred. Please contact support."}
}

func errorHandler(log *slog.Logger) runtime.ErrorHandlerFunc {
	return func(ctx context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
		st := status.Convert(err)
		f := faultOf(st)
		if f.Code >= 500 && f.Code != 503 {
			log.ErrorContext(ctx, "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		writeFault(w, r, f, retryAfter(st))
	}
}

// retryAfter is the wait a RetryInfo detail asks for (0: none).
func retryAfter(st *status.Status) time.Duration {
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	return 0
}

func routingErrorHandler(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, code int) {
	switch code {
	case http.StatusMethodNotAllowed:
		writeFault(w, r, &lbaasv1.Fault{Code: 405, Kind: "badMethod", Message: "Method not allowed"}, 0)
	default:
		writeFault(w, r, &lbaasv1.Fault{Code: 404, Kind: "itemNotFound", Message: "Resource not found"}, 0)
	}
}

// writeFault writes a fault in the request's format (JSON unless the
// client asked for XML); 401 has no body, as the reference says. A fault
// that can be retried later (a rate limit) says when in the Retry-After
// header (whole seconds, rounded up) and in the body.
func writeFault(w http.ResponseWriter, r *http.Request, f *lbaasv1.Fault, retry time.Duration) {
	if f.Code == http.StatusUnauthorized {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	body := faultBody{Code: f.Code, Message: f.Message, Details: f.Details}
	if retry > 0 {
		secs := int((retry + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		body.RetryAfter = time.Now().Add(retry).UTC().Format("2006-01-02T15:04:05.000Z")
	}
	if ve := f.GetValidationErrors(); ve != nil {
		body.ValidationErrors = &validationErrors{Messages: ve.Messages}
	}
	if r.Header.Get("Accept") == mimeXML {
		body.XMLName.Local, body.Namespace = faultKind(f), xmlNamespace
		w.Header().Set("Content-Type", mimeXML)
		w.WriteHeader(int(f.Code))
		_, _ = io.WriteString(w, xml.Header)
		_ = xml.NewEncoder(w).Encode(body)
		return
	}
	w.Header().Set("Content-Type", mimeJSON)
	w.WriteHeader(int(f.Code))
	_ = json.NewEncoder(w).Encode(body)
}

// faultKinds name the faults raised without a kind by their code.
var faultKinds = map[uint32]string{
	400: "badRequest", 403: "forbidden", 404: "itemNotFound", 405: "badMethod", 413: "overLimit",
	422: "unprocessableEntity", 500: "loadBalancerFault", 501: "notImplemented", 503: "serviceUnavailable",
}

// faultKind is the fault's name: the service's, or its code's.
func faultKind(f *lbaasv1.Fault) string {
	if f.Kind != "" {
		return f.Kind
	}
	if kind, ok := faultKinds[f.Code]; ok {
		return kind
	}
	return "serviceFault"
}
