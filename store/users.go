package store

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// ErrUserExists is returned when a username is taken.
var ErrUserExists = errors.New("store: user already exists")

// CreateUser inserts a user.
func (s *Store) CreateUser(ctx context.Context, u *User) error {
	db, cancel := s.bounded(ctx)
	defer cancel()
	err := db.Create(u).Error
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return ErrUserExists
	}
	return err
}

// UserByName finds a user by username.
func (s *Store) UserByName(ctx context.Context, username string) (*User, error) {
	db, cancel := s.boundedRead(ctx)
	defer cancel()
	var u User
	err := db.Where("username = ?", username).First(&u).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	return &u, err
}

// CountUsers counts users.
func (s *Store) CountUsers(ctx context.Context) (int64, error) {
	db, cancel := s.boundedRead(ctx)
	defer cancel()
	var n int64
	err := db.Model(&User{}).Count(&n).Error
	return n, err
}

// Users lists the users of a tenant ("" for every tenant), by username.
func (s *Store) Users(ctx context.Context, tenant string) ([]User, error) {
	db, cancel := s.boundedScan(ctx)
	defer cancel()
	q := db.Order("username")
	if tenant != "" {
		q = q.Where("tenant = ?", tenant)
	}
	var users []User
	return users, q.Find(&users).Error
}

// UpdateUser changes a user's API key hash and roles (empty: unchanged);
// a new key also revokes the user's tokens. ErrNotFound when there is no
// such user.
func (s *Store) UpdateUser(ctx context.Context, username, apiKeyHash, roles string) error {
	db, cancel := s.bounded(ctx)
	defer cancel()
	return db.Transaction(func(db *gorm.DB) error {
		id, err := userID(db, username)
		if err != nil {
			return err
		}
		set := map[string]any{}
		if apiKeyHash != "" {
			set["api_key_hash"] = apiKeyHash
			if err := db.Where("user_id = ?", id).Delete(&Token{}).Error; err != nil {
				return err
			}
		}
		if roles != "" {
			set["roles"] = roles
		}
		if len(set) == 0 {
			return nil
		}
		return db.Model(&User{}).Where("id = ?", id).Updates(set).Error
	})
}

// userID finds a user's id (ErrNotFound when there is no such user).
func userID(db *gorm.DB, username string) (uint32, error) {
	var u User
	err := db.Select("id").Where("username = ?", username).Take(&u).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return 0, ErrNotFound
	}
	return u.ID, err
}

// DeleteUser removes a user and its tokens. ErrNotFound when there is no
// such user.
func (s *Store) DeleteUser(ctx context.Context, username string) error {
	db, cancel := s.bounded(ctx)
	defer cancel()
	return db.Transaction(func(db *gorm.DB) error {
		id, err := userID(db, username)
		if err != nil {
			return err
		}
		if err := db.Where("user_id = ?", id).Delete(&Token{}).Error; err != nil {
			return err
		}
		return db.Delete(&User{}, id).Error
	})
}

// SaveToken stores an issued token and drops expired ones.
func (s *Store) SaveToken(ctx context.Context, t *Token) error {
	// SQLite compares times as text, which only orders them in one zone.
	t.ExpiresAt = t.ExpiresAt.UTC()
	db, cancel := s.bounded(ctx)
	defer cancel()
	if err := db.Where("expires_at < ?", time.Now().UTC()).Delete(&Token{}).Error; err != nil {
		return err
	}
	return db.Create(t).Error
}

// Grant is what an unexpired token allows: its user's tenant and roles.
type Grant struct {
	Tenant    string
	Roles     string
	ExpiresAt time.Time
}

// GrantOf finds an unexpired token of an existing user and what it allows.
func (s *Store) GrantOf(ctx context.Context, hash string) (*Grant, error) {
	db, cancel := s.boundedRead(ctx)
	defer cancel()
	var g Grant
	err := db.Table("tokens").Select("tokens.tenant, users.roles, tokens.expires_at").
		Joins("JOIN users ON users.id = tokens.user_id").
		Where("tokens.hash = ? AND tokens.expires_at > ?", hash, time.Now().UTC()).Take(&g).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	return &g, err
}

// AccountRateLimits lists every account's rate limit overrides.
func (s *Store) AccountRateLimits(ctx context.Context) ([]AccountRateLimit, error) {
	db, cancel := s.boundedScan(ctx)
	defer cancel()
	var out []AccountRateLimit
	return out, db.Order("account, verb, unit").Find(&out).Error
}

// SetAccountRateLimit sets (or replaces) one rate limit of an account.
func (s *Store) SetAccountRateLimit(ctx context.Context, l AccountRateLimit) error {
	db, cancel := s.bounded(ctx)
	defer cancel()
	return db.Clauses(clause.OnConflict{UpdateAll: true}).Create(&l).Error
}

// ResetAccountRateLimits drops an account's overrides: the defaults apply again.
func (s *Store) ResetAccountRateLimits(ctx context.Context, account string) error {
	db, cancel := s.bounded(ctx)
	defer cancel()
	return db.Where("account = ?", account).Delete(&AccountRateLimit{}).Error
}
