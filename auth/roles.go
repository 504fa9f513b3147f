package auth

import (
	"fmt"
	"slices"
	"strings"

	"github.com/openlbaas/lbaas/api"
)

// Role is a role a user holds on its account (reference:
// general-api-info/role-based-access-control.rst).
type Role string

// The roles. The account owner has every permission and holds no other
// role; of several roles the most extensive wins.
const (
	Owner          Role = "identity:user-admin" // the account owner: create, read, update, delete
	Admin          Role = "lbaas:admin"         // create, read, update, delete
	Creator        Role = "lbaas:creator"       // create, read, update
	Observer       Role = "lbaas:observer"      // read
	GlobalAdmin    Role = "admin"               // multiproduct: create, read, update, delete
	GlobalObserver Role = "observer"            // multiproduct: read
)

// Roles are the known roles, for listing and validation.
var Roles = []Role{Owner, Admin, Creator, Observer, GlobalAdmin, GlobalObserver}

// Description says what a role allows (shown in the identity response).
func (r Role) Description() string {
	switch r {
	case Owner:
		return "The account owner: every permission on the account."
	case Admin, GlobalAdmin:
		return "Create, read, update and delete load balancers."
	case Creator:
		return "Create, read and update load balancers."
	case Observer, GlobalObserver:
		return "Read load balancers."
	}
	return ""
}

// allows tells whether the role permits an action.
func (r Role) allows(a api.Action) bool {
	switch r {
	case Owner, Admin, GlobalAdmin:
		return true
	case Creator:
		return a != api.Delete
	case Observer, GlobalObserver:
		return a == api.Read
	}
	return false
}

// allowed tells whether any of the roles permits an action.
func allowed(roles []Role, a api.Action) bool {
	return slices.ContainsFunc(roles, func(r Role) bool { return r.allows(a) })
}

// ParseRoles reads a comma-separated list of role names. The account
// owner's role cannot be combined with others.
func ParseRoles(list string) ([]Role, error) {
	var out []Role
	for _, name := range strings.Split(list, ",") {
		r := Role(strings.TrimSpace(name))
		switch {
		case r == "":
			continue
		case !slices.Contains(Roles, r):
			return nil, fmt.Errorf("unknown role %q (known: %s)", r, joinRoles(Roles))
		case !slices.Contains(out, r):
			out = append(out, r)
		}
	}
	if len(out) > 1 && slices.Contains(out, Owner) {
		return nil, fmt.Errorf("the account owner (%s) holds no other role", Owner)
	}
	return out, nil
}

func joinRoles(roles []Role) string {
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = string(r)
	}
	return strings.Join(names, ",")
}

// storedRoles reads the roles column; unknown names (none are written)
// grant nothing.
func storedRoles(column string) []Role {
	var out []Role
	for _, name := range strings.Split(column, ",") {
		if r := Role(strings.TrimSpace(name)); slices.Contains(Roles, r) {
			out = append(out, r)
		}
	}
	return out
}
