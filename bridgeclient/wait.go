package bridgeclient

import (
	"context"
	"time"
)

// WaitInfo asks the bridge for its /v1/info until it answers or limit
// passes (a bridge that is still starting), and returns the last error
// then.
func (c *Client) WaitInfo(ctx context.Context, limit time.Duration) (Info, error) {
	deadline := time.Now().Add(limit)
	for {
		ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
		info, err := c.Info(ictx)
		cancel()
		if err == nil {
			return info, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return info, err
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}
