package translator

import (
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
)

// Validate looks inside the filter configurations served over ECDS: a
// TCP proxy without a stat prefix is what Envoy would refuse.
func TestValidateLooksInsideFilterConfigurations(t *testing.T) {
	out, err := Translate(tcpBase())
	if err != nil {
		t.Fatal(err)
	}
	validate(t, out)
	out.Envoy.Extensions = append(out.Envoy.Extensions, &corev3.TypedExtensionConfig{Name: "lb_2_tcp",
		TypedConfig: mustAny(&tcpproxyv3.TcpProxy{ClusterSpecifier: &tcpproxyv3.TcpProxy_Cluster{Cluster: "lb_2"}})})
	if err := out.Validate(); err == nil || !strings.Contains(err.Error(), "StatPrefix") {
		t.Errorf("an invalid TCP proxy configuration passes: %v", err)
	}
}
