package gateway

import (
	"context"
	"encoding/json"
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

// faultBody is the Rackspace JSON fault.
type faultBody struct {
	Code             uint32            `json:"code"`
	Message          string            `json:"message"`
	Details          string            `json:"details,omitempty"`
	ValidationErrors *validationErrors `json:"validationErrors,omitempty"`
	// RetryAfter is when a rate-limited request may be sent again
	// (ISO 8601, as the reference's overLimit fault gives it).
	RetryAfter string `json:"retryAfter,omitempty"`
}

type validationErrors struct {
	Messages []string `json:"messages"`
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
		writeFault(w, f, retryAfter(st))
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

func routingErrorHandler(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, _ *http.Request, code int) {
	switch code {
	case http.StatusMethodNotAllowed:
		writeFault(w, &lbaasv1.Fault{Code: 405, Message: "Method not allowed"}, 0)
	default:
		writeFault(w, &lbaasv1.Fault{Code: 404, Message: "Resource not found"}, 0)
	}
}

// writeFault writes a fault; 401 has no body, as the reference says. A
// fault that can be retried later (a rate limit) says when in the
// Retry-After header (whole seconds, rounded up) and in the body.
func writeFault(w http.ResponseWriter, f *lbaasv1.Fault, retry time.Duration) {
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
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(int(f.Code))
	_ = json.NewEncoder(w).Encode(body)
}
