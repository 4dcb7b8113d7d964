package caps

import (
	"os"
	"testing"
)

func TestHas(t *testing.T) {
	if Has(63) {
		t.Error("capability 63 (none such) reported")
	}
	if os.Geteuid() != 0 && Has(SysAdmin) {
		t.Error("a non-root process reported CAP_SYS_ADMIN")
	}
	t.Logf("CAP_SYS_ADMIN %v, CAP_SYS_NICE %v", Has(SysAdmin), Has(SysNice))
}
