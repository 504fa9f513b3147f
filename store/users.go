package store

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"
)

// ErrUserExists is returned when a username is taken.
var ErrUserExists = errors.New("store: user already exists")

// CreateUser inserts a user.
func (s *Store) CreateUser(ctx context.Context, u *User) error {
	err := s.db.WithContext(ctx).Create(u).Error
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return ErrUserExists
	}
	return err
}

// UserByName finds a user by username.
func (s *Store) UserByName(ctx context.Context, username string) (*User, error) {
	var u User
	err := s.db.WithContext(ctx).Where("username = ?", username).First(&u).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	return &u, err
}

// CountUsers counts users.
func (s *Store) CountUsers(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.WithContext(ctx).Model(&User{}).Count(&n).Error
	return n, err
}

// SaveToken stores an issued token and drops expired ones.
func (s *Store) SaveToken(ctx context.Context, t *Token) error {
	// SQLite compares times as text, which only orders them in one zone.
	t.ExpiresAt = t.ExpiresAt.UTC()
	db := s.db.WithContext(ctx)
	if err := db.Where("expires_at < ?", time.Now().UTC()).Delete(&Token{}).Error; err != nil {
		return err
	}
	return db.Create(t).Error
}

// TokenByHash finds an unexpired token.
func (s *Store) TokenByHash(ctx context.Context, hash string) (*Token, error) {
	var t Token
	err := s.db.WithContext(ctx).Where("hash = ? AND expires_at > ?", hash, time.Now().UTC()).First(&t).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	return &t, err
}
