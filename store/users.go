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

// DeleteTokens deletes every token of a user.
func (s *Store) DeleteTokens(ctx context.Context, userID uint32) error {
	db, cancel := s.bounded(ctx)
	defer cancel()
	return db.Where("user_id = ?", userID).Delete(&Token{}).Error
}

// TokenByHash finds an unexpired token.
func (s *Store) TokenByHash(ctx context.Context, hash string) (*Token, error) {
	db, cancel := s.boundedRead(ctx)
	defer cancel()
	var t Token
	err := db.Where("hash = ? AND expires_at > ?", hash, time.Now().UTC()).First(&t).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	return &t, err
}
