package api

import (
	lbaasv1 "github.com/openlbaas/lbaas/gen/lbaas/v1"
	"github.com/openlbaas/lbaas/store"
)

// SessionPersistences implements SessionPersistenceService: session persistence.
type SessionPersistences struct {
	lbaasv1.UnimplementedSessionPersistenceServiceServer
	lbChild
}

// NewSessionPersistences returns the SessionPersistenceService.
func NewSessionPersistences(st *store.Store, auth Authorizer, cfg Config) *SessionPersistences {
	return &SessionPersistences{lbChild: newLBChild(st, auth, cfg)}
}
