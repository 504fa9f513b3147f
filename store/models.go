package store

import (
	"fmt"
	"time"
)

// Load balancer statuses (the Rackspace spellings).
const (
	StatusBuild         = "BUILD"
	StatusActive        = "ACTIVE"
	StatusPendingUpdate = "PENDING_UPDATE"
	StatusPendingDelete = "PENDING_DELETE"
	StatusDeleted       = "DELETED"
	StatusError         = "ERROR"
	StatusSuspended     = "SUSPENDED"
)

// LoadBalancer is one customer load balancer. Rows are never removed: a
// deleted load balancer stays, in status DELETED, for usage and billing.
type LoadBalancer struct {
	ID                uint32 `gorm:"primaryKey;autoIncrement;index:idx_lb_account_id,priority:2"`
	Account           string `gorm:"size:64;not null;index:idx_lb_account_status;index:idx_lb_account_id,priority:1"`
	Name              string `gorm:"size:512;not null"`
	Protocol          string `gorm:"size:32;not null"`
	Port              uint32 `gorm:"not null"`
	Algorithm         string `gorm:"size:64;not null"`
	Status            string `gorm:"size:32;not null;index:idx_lb_account_status"`
	StatusDescription string `gorm:"size:4096;not null;default:''"`
	Timeout           uint32 `gorm:"not null"`
	HalfClosed        bool   `gorm:"not null"`
	HTTPSRedirect     bool   `gorm:"column:https_redirect;not null"`
	ConnectionLogging bool   `gorm:"not null"`
	ContentCaching    bool   `gorm:"not null"`
	// ErrorPage is the custom error page; empty means the default one.
	ErrorPage string `gorm:"type:text;not null;default:''"`
	// CheckPassive (Linode) takes a node answering 5xx out of rotation at once.
	CheckPassive bool `gorm:"not null;default:false"`
	// ClientKeepAliveTimeout (Tencent CLB) is the idle timeout of client
	// connections, in seconds.
	ClientKeepAliveTimeout uint32 `gorm:"not null;default:75"`
	// BackendKeepAlive (DigitalOcean) reuses connections to the nodes.
	BackendKeepAlive bool `gorm:"not null;default:false"`
	// Fleet is the group of proxies serving this load balancer (the API's "cluster").
	Fleet string `gorm:"size:128;not null"`
	// Revision is the store revision of the last change to this load balancer.
	Revision int64 `gorm:"not null;index"`
	// SSLTermination is the SSL termination configuration (nil: none); its
	// private key is sealed (internal/secrets), never stored in clear.
	SSLTermination     *SSLTermination     `gorm:"column:ssl_termination;serializer:json;type:text"`
	HealthMonitor      *HealthMonitor      `gorm:"serializer:json;type:text"`
	SessionPersistence *SessionPersistence `gorm:"serializer:json;type:text"`
	ConnectionThrottle *ConnectionThrottle `gorm:"serializer:json;type:text"`
	CreatedAt          time.Time           `gorm:"not null"`
	UpdatedAt          time.Time           `gorm:"not null;index"`
	DeletedAt          *time.Time

	Nodes      []Node
	VirtualIPs []VirtualIP `gorm:"many2many:load_balancer_virtual_ips"`
	AccessList []NetworkItem
	Metadata   []LoadBalancerMeta
}

// SSLTermination is a load balancer's SSL termination (the reference's
// sslTermination): the certificate it presents on its secure port.
type SSLTermination struct {
	Certificate  string `json:"certificate"`
	Intermediate string `json:"intermediateCertificate,omitempty"`
	// SealedKey is the private key sealed by the secrets keyring with the
	// load balancer's SecretContext: never the key in clear.
	SealedKey         []byte `json:"sealedKey"`
	Enabled           bool   `json:"enabled"`
	SecurePort        uint32 `json:"securePort"`
	SecureTrafficOnly bool   `json:"secureTrafficOnly"`
	CipherProfile     string `json:"cipherProfile"`
	// TLS10 and TLS11 tell whether those protocol versions are enabled.
	TLS10 bool `json:"tls10"`
	TLS11 bool `json:"tls11"`
	// Mappings are the certificate mappings (a certificate per host
	// name): they belong to the termination and go with it.
	Mappings []CertificateMapping `json:"certificateMappings,omitempty"`
	// LastMappingID is the id given to the last mapping added: ids are
	// never reused while the termination lives.
	LastMappingID uint32 `json:"lastMappingId,omitempty"`
}

// CertificateMapping is a certificate a terminating load balancer presents
// to clients asking (SNI) for HostName.
type CertificateMapping struct {
	ID           uint32 `json:"id"`
	HostName     string `json:"hostName"`
	Certificate  string `json:"certificate"`
	Intermediate string `json:"intermediateCertificate,omitempty"`
	// SealedKey is the private key sealed with the mapping's
	// MappingSecretContext: never the key in clear.
	SealedKey []byte `json:"sealedKey"`
}

// Mapping returns the mapping with id (nil: none).
func (t *SSLTermination) Mapping(id uint32) *CertificateMapping {
	for i := range t.Mappings {
		if t.Mappings[i].ID == id {
			return &t.Mappings[i]
		}
	}
	return nil
}

// SecretContext is what a load balancer's sealed secrets are bound to: a
// sealed key copied to another load balancer's row does not open.
func SecretContext(lbID uint32) []byte {
	return []byte(fmt.Sprintf("lbaas/loadbalancer/%d/ssltermination", lbID))
}

// MappingSecretContext is what the key of a certificate mapping is bound
// to: a sealed key copied to another mapping or load balancer does not open.
func MappingSecretContext(lbID, mappingID uint32) []byte {
	return []byte(fmt.Sprintf("lbaas/loadbalancer/%d/ssltermination/certificatemapping/%d", lbID, mappingID))
}

// Node is a back-end server of a load balancer.
type Node struct {
	ID             uint32 `gorm:"primaryKey;autoIncrement"`
	LoadBalancerID uint32 `gorm:"not null;index"`
	Address        string `gorm:"size:256;not null;index"`
	Port           uint32 `gorm:"not null"`
	Condition      string `gorm:"size:16;not null"`
	Type           string `gorm:"size:16;not null"`
	Weight         uint32 `gorm:"not null"`
	Status         string `gorm:"size:16;not null"`
	CreatedAt      time.Time
	UpdatedAt      time.Time
	Metadata       []NodeMeta
}

// VirtualIP is an address allocated from a pool to an account. Several of
// the account's load balancers may share it, each on its own port.
type VirtualIP struct {
	ID        uint32 `gorm:"primaryKey;autoIncrement"`
	Account   string `gorm:"size:64;not null;index"`
	Address   string `gorm:"size:64;not null;uniqueIndex"`
	Type      string `gorm:"size:16;not null"`
	IPVersion string `gorm:"column:ip_version;size:8;not null"`
	CreatedAt time.Time
	// ReleasedBy is the load balancer whose pending change detached the
	// address from the last load balancer using it: the address is freed
	// when that change is applied.
	ReleasedBy *uint32 `gorm:"index"`
}

// NetworkItem is an access list entry.
type NetworkItem struct {
	ID             uint32 `gorm:"primaryKey;autoIncrement"`
	LoadBalancerID uint32 `gorm:"not null;index"`
	Address        string `gorm:"size:64;not null"`
	Type           string `gorm:"size:8;not null"`
}

// LoadBalancerMeta is a metadata item of a load balancer.
type LoadBalancerMeta struct {
	ID             uint32 `gorm:"primaryKey;autoIncrement"`
	LoadBalancerID uint32 `gorm:"not null;index"`
	Key            string `gorm:"size:1024;not null"`
	Value          string `gorm:"size:1024;not null"`
}

// NodeMeta is a metadata item of a node.
type NodeMeta struct {
	ID     uint32 `gorm:"primaryKey;autoIncrement"`
	NodeID uint32 `gorm:"not null;index"`
	Key    string `gorm:"size:1024;not null"`
	Value  string `gorm:"size:1024;not null"`
}

// HealthMonitor is the active health check configuration.
type HealthMonitor struct {
	Type                       string `json:"type"`
	Delay                      uint32 `json:"delay"`
	Timeout                    uint32 `json:"timeout"`
	AttemptsBeforeDeactivation uint32 `json:"attemptsBeforeDeactivation"`
	Path                       string `json:"path,omitempty"`
	StatusRegex                string `json:"statusRegex,omitempty"`
	BodyRegex                  string `json:"bodyRegex,omitempty"`
	HostHeader                 string `json:"hostHeader,omitempty"`
	// CheckBody (Linode check_body) must appear in the response body.
	CheckBody string `json:"checkBody,omitempty"`
}

// SessionPersistence is the session persistence configuration.
type SessionPersistence struct {
	PersistenceType string `json:"persistenceType"`
}

// ConnectionThrottle is the connection throttling configuration.
type ConnectionThrottle struct {
	MaxConnections    uint32 `json:"maxConnections"`
	MinConnections    uint32 `json:"minConnections"`
	MaxConnectionRate uint32 `json:"maxConnectionRate"`
	RateInterval      uint32 `json:"rateInterval"`
}

// NodeEvent is an entry of a load balancer's node service events feed.
type NodeEvent struct {
	ID              uint32 `gorm:"primaryKey;autoIncrement"`
	LoadBalancerID  uint32 `gorm:"not null;index"`
	NodeID          uint32 `gorm:"not null"`
	Account         string `gorm:"size:64;not null"`
	Type            string `gorm:"size:32;not null"`
	Category        string `gorm:"size:32;not null"`
	Severity        string `gorm:"size:16;not null"`
	Title           string `gorm:"size:256;not null"`
	Description     string `gorm:"size:1024;not null"`
	DetailedMessage string `gorm:"size:4096;not null"`
	// CallbackHost is the replica whose health checks saw the change.
	CallbackHost string `gorm:"size:256;not null;default:''"`
	CreatedAt    time.Time
}

// User is an API user of one tenant (account). Secrets are stored hashed.
type User struct {
	ID           uint32 `gorm:"primaryKey;autoIncrement"`
	Username     string `gorm:"size:128;not null;uniqueIndex"`
	Tenant       string `gorm:"size:64;not null;index"`
	APIKeyHash   string `gorm:"column:api_key_hash;size:128;not null"`
	PasswordHash string `gorm:"size:128;not null;default:''"`
	// Roles are the user's role names, comma-separated (package auth
	// knows them: the account owner identity:user-admin, or product roles
	// such as lbaas:observer).
	Roles     string `gorm:"size:256;not null;default:'lbaas:admin'"`
	CreatedAt time.Time
}

// AccountRateLimit overrides one default rate limit of an account: at
// most Value requests with HTTP method Verb per Unit (SECOND or MINUTE).
type AccountRateLimit struct {
	Account string `gorm:"primaryKey;size:64"`
	Verb    string `gorm:"primaryKey;size:8"`
	Unit    string `gorm:"primaryKey;size:8"`
	Value   uint32 `gorm:"not null"`
}

// Token is an issued authentication token, stored by its SHA-256 hash.
type Token struct {
	Hash      string    `gorm:"primaryKey;size:64"`
	UserID    uint32    `gorm:"not null;index"`
	Tenant    string    `gorm:"size:64;not null"`
	ExpiresAt time.Time `gorm:"not null;index"`
	CreatedAt time.Time
}

// Change records that a revision touched a load balancer; the xDS side
// reads it to rebuild only what changed.
type Change struct {
	Revision       int64  `gorm:"primaryKey;autoIncrement:false"`
	LoadBalancerID uint32 `gorm:"primaryKey;autoIncrement:false"`
	Fleet          string `gorm:"size:128;not null"`
}

// revisionRow is the single row holding the global revision counter.
type revisionRow struct {
	ID    int   `gorm:"primaryKey;autoIncrement:false"`
	Value int64 `gorm:"not null"`
}

func (revisionRow) TableName() string { return "revisions" }

// vipPool keeps each address pool's allocation cursor.
type vipPool struct {
	Name   string `gorm:"primaryKey;size:64"`
	Cursor int64  `gorm:"not null"`
}

func (vipPool) TableName() string { return "vip_pools" }

func (LoadBalancerMeta) TableName() string { return "load_balancer_meta" }
func (NodeMeta) TableName() string         { return "node_meta" }
