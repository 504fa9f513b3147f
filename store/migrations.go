package store

import (
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// migrations is the schema history, oldest first. A released migration is
// never edited: each one creates tables from its own snapshot of the models,
// so a later change to models.go cannot change what an old migration did.
// TestMigrationsMatchModels fails when models.go and the history disagree.
var migrations = []*gormigrate.Migration{
	{ID: "202611210001_initial", Migrate: migrateInitial},
	{ID: "202611210002_features", Migrate: migrateFeatures},
	{ID: "202611300001_content_caching_off", Migrate: migrateContentCachingOff},
	{ID: "202611300002_roles_and_rate_limits", Migrate: migrateRolesAndRateLimits},
	{ID: "202611300003_event_callback_host", Migrate: migrateEventCallbackHost},
	{ID: "202611300004_replicas", Migrate: migrateReplicas},
	{ID: "202611300005_api_speed", Migrate: migrateAPISpeed},
	{ID: "202611300006_ssl_termination", Migrate: migrateSSLTermination},
	{ID: "202612010001_usage", Migrate: migrateUsage},
	{ID: "202612010002_stats_counters", Migrate: migrateStatsCounters},
}

// migrateSSLTermination adds the SSL termination of load balancers (its
// private key sealed, see internal/secrets).
func migrateSSLTermination(tx *gorm.DB) error {
	type LoadBalancer struct {
		SSLTermination string `gorm:"column:ssl_termination;type:text"`
	}
	return tx.Table("load_balancers").Migrator().AddColumn(&LoadBalancer{}, "SSLTermination")
}

// migrateEventCallbackHost records where the health checks of a node
// service event ran (the reference's callbackHost).
func migrateEventCallbackHost(tx *gorm.DB) error {
	type NodeEvent struct {
		CallbackHost string `gorm:"size:256;not null;default:''"`
	}
	return tx.Table("node_events").Migrator().AddColumn(&NodeEvent{}, "CallbackHost")
}

// migrateContentCachingOff turns off the content caching flag of load
// balancers that had it: the proxies never cache (no cache Envoy offers keeps
// a load balancer's promises), and the API now refuses to turn it on, so a
// stored "enabled" would show a promise nobody keeps. The proxies'
// configuration does not change.
func migrateContentCachingOff(tx *gorm.DB) error {
	return tx.Exec("UPDATE load_balancers SET content_caching = ? WHERE content_caching = ?", false, true).Error
}

// migrateRolesAndRateLimits gives users their roles (users that existed
// before had full access to their account: they keep it as lbaas:admin)
// and adds the per-account rate limit overrides.
func migrateRolesAndRateLimits(tx *gorm.DB) error {
	type User struct {
		Roles string `gorm:"size:256;not null;default:'lbaas:admin'"`
	}
	if err := tx.Table("users").Migrator().AddColumn(&User{}, "Roles"); err != nil {
		return err
	}
	type AccountRateLimit struct {
		Account string `gorm:"primaryKey;size:64"`
		Verb    string `gorm:"primaryKey;size:8"`
		Unit    string `gorm:"primaryKey;size:8"`
		Value   uint32 `gorm:"not null"`
	}
	return tx.Table("account_rate_limits").Migrator().CreateTable(&AccountRateLimit{})
}

// migrateReplicas adds what replicas sharing a database agree on: their
// leases, the fleets each one has clients of, the newest revision of each
// load balancer each one's clients applied, and the last accepted
// configuration of load balancers in ERROR (see docs/architecture.md).
func migrateReplicas(tx *gorm.DB) error {
	type Replica struct {
		ID        string    `gorm:"primaryKey;size:64"`
		Probes    bool      `gorm:"not null;default:false"`
		Published int64     `gorm:"not null"`
		ExpiresAt time.Time `gorm:"not null;index"`
		StartedAt time.Time `gorm:"not null"`
	}
	type ReplicaFleet struct {
		ReplicaID string `gorm:"primaryKey;size:64"`
		Fleet     string `gorm:"primaryKey;size:128"`
	}
	type ReplicaVerdict struct {
		ReplicaID      string `gorm:"primaryKey;size:64"`
		LoadBalancerID uint32 `gorm:"primaryKey;autoIncrement:false"`
		Revision       int64  `gorm:"not null"`
	}
	type AcceptedConfig struct {
		LoadBalancerID uint32 `gorm:"primaryKey;autoIncrement:false"`
		Kind           string `gorm:"primaryKey;size:16"`
		Fleet          string `gorm:"size:128;not null"`
		Config         []byte `gorm:"not null"`
	}
	return createTables(tx, []table{
		{"replicas", &Replica{}},
		{"replica_fleets", &ReplicaFleet{}},
		{"replica_verdicts", &ReplicaVerdict{}},
		{"accepted_configs", &AcceptedConfig{}},
	})
}

// table is a table a migration creates, from the migration's own model.
type table struct {
	name  string
	model any
}

func createTables(tx *gorm.DB, tables []table) error {
	for _, t := range tables {
		if err := tx.Table(t.name).Migrator().CreateTable(t.model); err != nil {
			return err
		}
	}
	return nil
}

// migrateAPISpeed adds an index that lists an account's load balancers in
// id order without sorting them all, and virtual_ips.released_by: the load
// balancer whose change detached an address that no load balancer uses any
// more, so that applying that change frees exactly that address (settle
// swept the whole table before). Addresses left over by that sweep's
// pending changes are freed now, as the next sweep would have done.
func migrateAPISpeed(tx *gorm.DB) error {
	if err := tx.Exec("CREATE INDEX idx_lb_account_id ON load_balancers (account, id)").Error; err != nil {
		return err
	}
	type VirtualIP struct {
		ReleasedBy *uint32 `gorm:"index"`
	}
	if err := tx.Table("virtual_ips").Migrator().AddColumn(&VirtualIP{}, "ReleasedBy"); err != nil {
		return err
	}
	if err := tx.Exec("CREATE INDEX idx_virtual_ips_released_by ON virtual_ips (released_by)").Error; err != nil {
		return err
	}
	return tx.Exec(`DELETE FROM virtual_ips WHERE NOT EXISTS
		(SELECT 1 FROM load_balancer_virtual_ips l WHERE l.virtual_ip_id = virtual_ips.id)`).Error
}

// migrateFeatures adds the columns of the load balancer features (error
// page and the Linode, Tencent and DigitalOcean extensions) and the node
// service events feed.
func migrateFeatures(tx *gorm.DB) error {
	type LoadBalancer struct {
		ErrorPage              string `gorm:"type:text;not null;default:''"`
		CheckPassive           bool   `gorm:"not null;default:false"`
		ClientKeepAliveTimeout uint32 `gorm:"not null;default:75"`
		BackendKeepAlive       bool   `gorm:"not null;default:false"`
	}
	for _, column := range []string{"ErrorPage", "CheckPassive", "ClientKeepAliveTimeout", "BackendKeepAlive"} {
		if err := tx.Table("load_balancers").Migrator().AddColumn(&LoadBalancer{}, column); err != nil {
			return err
		}
	}
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
		CreatedAt       time.Time
	}
	return tx.Table("node_events").Migrator().CreateTable(&NodeEvent{})
}

func migrateInitial(tx *gorm.DB) error {
	type LoadBalancer struct {
		ID                 uint32    `gorm:"primaryKey;autoIncrement"`
		Account            string    `gorm:"size:64;not null;index:idx_lb_account_status"`
		Name               string    `gorm:"size:512;not null"`
		Protocol           string    `gorm:"size:32;not null"`
		Port               uint32    `gorm:"not null"`
		Algorithm          string    `gorm:"size:64;not null"`
		Status             string    `gorm:"size:32;not null;index:idx_lb_account_status"`
		StatusDescription  string    `gorm:"size:4096;not null;default:''"`
		Timeout            uint32    `gorm:"not null"`
		HalfClosed         bool      `gorm:"not null"`
		HTTPSRedirect      bool      `gorm:"column:https_redirect;not null"`
		ConnectionLogging  bool      `gorm:"not null"`
		ContentCaching     bool      `gorm:"not null"`
		Fleet              string    `gorm:"size:128;not null"`
		Revision           int64     `gorm:"not null;index"`
		HealthMonitor      string    `gorm:"type:text"`
		SessionPersistence string    `gorm:"type:text"`
		ConnectionThrottle string    `gorm:"type:text"`
		CreatedAt          time.Time `gorm:"not null"`
		UpdatedAt          time.Time `gorm:"not null;index"`
		DeletedAt          *time.Time
	}
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
	}
	type VirtualIP struct {
		ID        uint32 `gorm:"primaryKey;autoIncrement"`
		Account   string `gorm:"size:64;not null;index"`
		Address   string `gorm:"size:64;not null;uniqueIndex"`
		Type      string `gorm:"size:16;not null"`
		IPVersion string `gorm:"column:ip_version;size:8;not null"`
		CreatedAt time.Time
	}
	type LoadBalancerVirtualIP struct {
		LoadBalancerID uint32 `gorm:"primaryKey;autoIncrement:false"`
		VirtualIPID    uint32 `gorm:"primaryKey;autoIncrement:false;index"`
	}
	type NetworkItem struct {
		ID             uint32 `gorm:"primaryKey;autoIncrement"`
		LoadBalancerID uint32 `gorm:"not null;index"`
		Address        string `gorm:"size:64;not null"`
		Type           string `gorm:"size:8;not null"`
	}
	type LoadBalancerMeta struct {
		ID             uint32 `gorm:"primaryKey;autoIncrement"`
		LoadBalancerID uint32 `gorm:"not null;index"`
		Key            string `gorm:"size:1024;not null"`
		Value          string `gorm:"size:1024;not null"`
	}
	type NodeMeta struct {
		ID     uint32 `gorm:"primaryKey;autoIncrement"`
		NodeID uint32 `gorm:"not null;index"`
		Key    string `gorm:"size:1024;not null"`
		Value  string `gorm:"size:1024;not null"`
	}
	type User struct {
		ID           uint32 `gorm:"primaryKey;autoIncrement"`
		Username     string `gorm:"size:128;not null;uniqueIndex"`
		Tenant       string `gorm:"size:64;not null;index"`
		APIKeyHash   string `gorm:"column:api_key_hash;size:128;not null"`
		PasswordHash string `gorm:"size:128;not null;default:''"`
		CreatedAt    time.Time
	}
	type Token struct {
		Hash      string    `gorm:"primaryKey;size:64"`
		UserID    uint32    `gorm:"not null;index"`
		Tenant    string    `gorm:"size:64;not null"`
		ExpiresAt time.Time `gorm:"not null;index"`
		CreatedAt time.Time
	}
	type Change struct {
		Revision       int64  `gorm:"primaryKey;autoIncrement:false"`
		LoadBalancerID uint32 `gorm:"primaryKey;autoIncrement:false"`
		Fleet          string `gorm:"size:128;not null"`
	}
	type Revision struct {
		ID    int   `gorm:"primaryKey;autoIncrement:false"`
		Value int64 `gorm:"not null"`
	}
	type VIPPool struct {
		Name   string `gorm:"primaryKey;size:64"`
		Cursor int64  `gorm:"not null"`
	}
	tables := []table{
		{"load_balancers", &LoadBalancer{}},
		{"nodes", &Node{}},
		{"virtual_ips", &VirtualIP{}},
		{"load_balancer_virtual_ips", &LoadBalancerVirtualIP{}},
		{"network_items", &NetworkItem{}},
		{"load_balancer_meta", &LoadBalancerMeta{}},
		{"node_meta", &NodeMeta{}},
		{"users", &User{}},
		{"tokens", &Token{}},
		{"changes", &Change{}},
		{"revisions", &Revision{}},
		{"vip_pools", &VIPPool{}},
	}
	if err := createTables(tx, tables); err != nil {
		return err
	}
	return tx.Table("revisions").Create(&Revision{ID: 1, Value: 0}).Error
}
