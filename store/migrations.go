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
	{ID: "202611300001_api_speed", Migrate: migrateAPISpeed},
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
	tables := []struct {
		name  string
		model any
	}{
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
	for _, t := range tables {
		if err := tx.Table(t.name).Migrator().CreateTable(t.model); err != nil {
			return err
		}
	}
	return tx.Table("revisions").Create(&Revision{ID: 1, Value: 0}).Error
}
