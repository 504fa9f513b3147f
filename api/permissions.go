package api

import (
	"context"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
)

// Action is what a method does to an account's resources, as role-based
// access control counts it (create, read, update, delete). Each is one
// HTTP method of the REST API, which is also what rate limits count.
type Action uint8

// The actions, each the HTTP method of its REST routes.
const (
	Read Action = iota + 1
	Create
	Update
	Delete
)

// Verb is the action's HTTP method.
func (a Action) Verb() string {
	switch a {
	case Read:
		return "GET"
	case Create:
		return "POST"
	case Update:
		return "PUT"
	case Delete:
		return "DELETE"
	}
	return ""
}

// Actions are the action of every lbaas.v1 method. A method missing here
// is refused to everyone (and TestEveryMethodHasAnAction fails), so no
// method can ship without its check.
var Actions = map[string]Action{
	"/lbaas.v1.LoadBalancerService/ListLoadBalancers":         Read,
	"/lbaas.v1.LoadBalancerService/CreateLoadBalancer":        Create,
	"/lbaas.v1.LoadBalancerService/GetLoadBalancer":           Read,
	"/lbaas.v1.LoadBalancerService/UpdateLoadBalancer":        Update,
	"/lbaas.v1.LoadBalancerService/DeleteLoadBalancer":        Delete,
	"/lbaas.v1.LoadBalancerService/BulkDeleteLoadBalancers":   Delete,
	"/lbaas.v1.LoadBalancerService/GetClusterSourceAddresses": Read,
	"/lbaas.v1.LoadBalancerService/GetStats":                  Read,

	"/lbaas.v1.CatalogService/ListProtocols":              Read,
	"/lbaas.v1.CatalogService/ListAlgorithms":             Read,
	"/lbaas.v1.CatalogService/GetAbsoluteLimits":          Read,
	"/lbaas.v1.CatalogService/GetLimits":                  Read,
	"/lbaas.v1.CatalogService/ListAllowedDomains":         Read,
	"/lbaas.v1.CatalogService/GetRegionalSourceAddresses": Read,

	"/lbaas.v1.NodeService/ListNodes":       Read,
	"/lbaas.v1.NodeService/AddNodes":        Create,
	"/lbaas.v1.NodeService/GetNode":         Read,
	"/lbaas.v1.NodeService/UpdateNode":      Update,
	"/lbaas.v1.NodeService/BulkUpdateNodes": Update,
	"/lbaas.v1.NodeService/DeleteNode":      Delete,
	"/lbaas.v1.NodeService/BulkDeleteNodes": Delete,

	"/lbaas.v1.VirtualIpService/ListVirtualIps":       Read,
	"/lbaas.v1.VirtualIpService/AddVirtualIp":         Create,
	"/lbaas.v1.VirtualIpService/DeleteVirtualIp":      Delete,
	"/lbaas.v1.VirtualIpService/BulkDeleteVirtualIps": Delete,

	"/lbaas.v1.HealthMonitorService/GetHealthMonitor":    Read,
	"/lbaas.v1.HealthMonitorService/UpdateHealthMonitor": Update,
	"/lbaas.v1.HealthMonitorService/DeleteHealthMonitor": Delete,

	"/lbaas.v1.AccessListService/GetAccessList":     Read,
	"/lbaas.v1.AccessListService/AppendAccessList":  Create,
	"/lbaas.v1.AccessListService/DeleteAccessList":  Delete,
	"/lbaas.v1.AccessListService/DeleteNetworkItem": Delete,

	"/lbaas.v1.ConnectionThrottleService/GetConnectionThrottle":    Read,
	"/lbaas.v1.ConnectionThrottleService/UpdateConnectionThrottle": Update,
	"/lbaas.v1.ConnectionThrottleService/DeleteConnectionThrottle": Delete,

	"/lbaas.v1.SessionPersistenceService/GetSessionPersistence":    Read,
	"/lbaas.v1.SessionPersistenceService/UpdateSessionPersistence": Update,
	"/lbaas.v1.SessionPersistenceService/DeleteSessionPersistence": Delete,

	"/lbaas.v1.ConnectionLoggingService/GetConnectionLogging":    Read,
	"/lbaas.v1.ConnectionLoggingService/UpdateConnectionLogging": Update,

	"/lbaas.v1.ErrorPageService/GetErrorPage":    Read,
	"/lbaas.v1.ErrorPageService/UpdateErrorPage": Update,
	"/lbaas.v1.ErrorPageService/DeleteErrorPage": Delete,

	"/lbaas.v1.SSLTerminationService/GetSSLTermination":    Read,
	"/lbaas.v1.SSLTerminationService/ListCiphers":          Read,
	"/lbaas.v1.SSLTerminationService/UpdateSSLTermination": Update,
	"/lbaas.v1.SSLTerminationService/DeleteSSLTermination": Delete,

	"/lbaas.v1.CertificateMappingService/ListCertificateMappings":  Read,
	"/lbaas.v1.CertificateMappingService/GetCertificateMapping":    Read,
	"/lbaas.v1.CertificateMappingService/AddCertificateMapping":    Create,
	"/lbaas.v1.CertificateMappingService/UpdateCertificateMapping": Update,
	"/lbaas.v1.CertificateMappingService/DeleteCertificateMapping": Delete,

	"/lbaas.v1.ContentCachingService/GetContentCaching":    Read,
	"/lbaas.v1.ContentCachingService/UpdateContentCaching": Update,

	"/lbaas.v1.MetadataService/ListLoadBalancerMetadata":   Read,
	"/lbaas.v1.MetadataService/AddLoadBalancerMetadata":    Create,
	"/lbaas.v1.MetadataService/DeleteLoadBalancerMetadata": Delete,
	"/lbaas.v1.MetadataService/GetLoadBalancerMeta":        Read,
	"/lbaas.v1.MetadataService/UpdateLoadBalancerMeta":     Update,
	"/lbaas.v1.MetadataService/DeleteLoadBalancerMeta":     Delete,
	"/lbaas.v1.MetadataService/ListNodeMetadata":           Read,
	"/lbaas.v1.MetadataService/AddNodeMetadata":            Create,
	"/lbaas.v1.MetadataService/DeleteNodeMetadata":         Delete,
	"/lbaas.v1.MetadataService/GetNodeMeta":                Read,
	"/lbaas.v1.MetadataService/UpdateNodeMeta":             Update,
	"/lbaas.v1.MetadataService/DeleteNodeMeta":             Delete,

	"/lbaas.v1.NodeEventService/ListNodeEvents": Read,

	"/lbaas.v1.UsageService/GetUsage":                  Read,
	"/lbaas.v1.UsageService/GetCurrentUsage":           Read,
	"/lbaas.v1.UsageService/GetAccountUsage":           Read,
	"/lbaas.v1.UsageService/ListBillableLoadBalancers": Read,
	"/lbaas.v1.UsageService/GetStatsHistory":           Read,
}

// CalledMethod is the full name of the lbaas.v1 method a request calls,
// over gRPC or through the REST gateway ("" when neither says).
func CalledMethod(ctx context.Context) string {
	if m, ok := grpc.Method(ctx); ok && m != "" {
		return m
	}
	m, _ := runtime.RPCMethod(ctx)
	return m
}
