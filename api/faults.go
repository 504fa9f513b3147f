// Package api implements the lbaas.v1 gRPC services: it validates requests,
// enforces the account's limits and drives the load balancer status
// machine, on top of the store. The REST gateway calls the same services.
package api

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	lbaasv1 "github.com/openlbaas/lbaas/gen/lbaas/v1"
	"github.com/openlbaas/lbaas/store"
)

// fault builds a gRPC status carrying the Rackspace fault as a detail.
func fault(c codes.Code, httpCode uint32, kind, message, details string, validation ...string) error {
	f := &lbaasv1.Fault{Code: httpCode, Kind: kind, Message: message, Details: details}
	if len(validation) > 0 {
		f.ValidationErrors = &lbaasv1.ValidationErrors{Messages: validation}
	}
	st, err := status.New(c, message).WithDetails(f)
	if err != nil {
		return status.Error(codes.Internal, message)
	}
	return st.Err()
}

// BadRequest is the validation fault; each message names a bad field.
func BadRequest(messages ...string) error {
	return fault(codes.InvalidArgument, 400, "badRequest", "Validation Failure", "The object is not valid", messages...)
}

// NotFound is the itemNotFound fault.
func NotFound(message string) error {
	return fault(codes.NotFound, 404, "itemNotFound", message, "")
}

// Immutable is the immutableEntity fault of a load balancer that is busy.
func Immutable(lb *store.LoadBalancer) error {
	msg := fmt.Sprintf("Load Balancer '%d' has a status of '%s' and is considered immutable.", lb.ID, lb.Status)
	return fault(codes.FailedPrecondition, 422, "immutableEntity", msg, "")
}

// Unprocessable is the unprocessableEntity fault.
func Unprocessable(message string) error {
	return fault(codes.FailedPrecondition, 422, "unprocessableEntity", message, "")
}

// OverLimit is the overLimit fault of an absolute limit.
func OverLimit(message string) error {
	return fault(codes.ResourceExhausted, 413, "overLimit", message, "")
}

// RateLimited is the overLimit fault of a rate limit: the caller may try
// again after retryAfter (a google.rpc.RetryInfo detail next to the fault;
// the REST gateway turns it into the Retry-After header).
func RateLimited(retryAfter time.Duration, details string) error {
	f := &lbaasv1.Fault{Code: 413, Kind: "overLimit", Message: "OverLimit Retry...", Details: details}
	st, err := status.New(codes.ResourceExhausted, f.Message).WithDetails(f,
		&errdetails.RetryInfo{RetryDelay: durationpb.New(retryAfter)})
	if err != nil {
		return status.Error(codes.ResourceExhausted, f.Message)
	}
	return st.Err()
}

// Forbidden is the 403 fault of an action the caller's roles do not allow.
func Forbidden(details string) error {
	return fault(codes.PermissionDenied, 403, "forbidden", "Forbidden", details)
}

// OutOfVirtualIPs is the outOfVirtualIps fault.
func OutOfVirtualIPs() error {
	return fault(codes.ResourceExhausted, 500, "outOfVirtualIps",
		"Out of virtual IPs. Please contact support so they can allocate more virtual IPs.", "")
}

// Unauthorized is the 401 fault (the REST gateway sends it without a body).
func Unauthorized() error {
	return fault(codes.Unauthenticated, 401, "unauthorized", "The request could not be authenticated.", "")
}

// Unavailable is the serviceUnavailable fault.
func Unavailable() error {
	return fault(codes.Unavailable, 503, "serviceUnavailable", "The Load balancing service is currently not available", "")
}

// storeError turns an unexpected store error into the fault a client gets:
// the database is the only thing that can fail here, so it is a 503. The
// store's own deadline passing (a database that does not answer) is such a
// failure too; only the end of the request's own context is the caller's.
func storeError(ctx context.Context, log *slog.Logger, err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	if ctx.Err() != nil {
		return status.FromContextError(ctx.Err()).Err()
	}
	log.ErrorContext(ctx, "database error", "err", err)
	return Unavailable()
}

// validation collects the messages of a request's bad fields.
type validation []string

func (v *validation) add(field, format string, args ...any) {
	*v = append(*v, field+": "+fmt.Sprintf(format, args...))
}

func (v validation) err() error {
	if len(v) == 0 {
		return nil
	}
	return BadRequest(v...)
}

func joinIDs(ids []uint32) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprint(id)
	}
	return strings.Join(parts, ",")
}
