package api

import (
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// Every method of every lbaas.v1 service has its RBAC action, so a new
// method cannot ship unchecked (Authorize refuses a method without one),
// and the table names no method that does not exist.
func TestEveryMethodHasAnAction(t *testing.T) {
	seen := map[string]bool{}
	protoregistry.GlobalFiles.RangeFilesByPackage("lbaas.v1", func(f protoreflect.FileDescriptor) bool {
		for i := 0; i < f.Services().Len(); i++ {
			s := f.Services().Get(i)
			for j := 0; j < s.Methods().Len(); j++ {
				full := "/" + string(s.FullName()) + "/" + string(s.Methods().Get(j).Name())
				seen[full] = true
				if _, ok := Actions[full]; !ok {
					t.Errorf("%s has no entry in api.Actions: say whether it reads, creates, updates or deletes", full)
				}
			}
		}
		return true
	})
	if len(seen) < 50 {
		t.Fatalf("found %d lbaas.v1 methods in the descriptors; the generated code is not registered?", len(seen))
	}
	for m, a := range Actions {
		if !seen[m] {
			t.Errorf("api.Actions names %s, which no service has", m)
		}
		if a.Verb() == "" {
			t.Errorf("api.Actions[%s] = %d, not an action", m, a)
		}
	}
}
