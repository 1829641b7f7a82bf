package recycle

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// client-go's watch channel is unbuffered (its decoder reads the next event
// only once the last was taken), as the fake's FakeWatcher is. A rollout
// sends hundreds of pod events between two rounds of the wait; one round
// must see them all, not the one that happened to be ready.
func TestWaitView_takesEventsAsTheyArrive(t *testing.T) {
	t.Parallel()
	client := fake.NewClientset()
	w := watch.NewFake() // unbuffered, as a real watch's channel
	client.PrependWatchReactor("pods", func(k8stesting.Action) (bool, watch.Interface, error) { return true, w, nil })
	v := newWaitView(client, "apps", "api", "")
	defer v.close()
	if pods, err := v.livePods(t.Context()); err != nil || len(pods) != 0 {
		t.Fatalf("first look: %d pods, %v", len(pods), err)
	}
	const n = 200
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := range n {
			w.Add(&corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("api-%03d", i), Namespace: "apps", ResourceVersion: fmt.Sprint(i + 1)},
				Spec:       corev1.PodSpec{ServiceAccountName: "api"},
				Status:     corev1.PodStatus{Phase: corev1.PodRunning},
			})
		}
	}()
	select {
	case <-sent:
	case <-time.After(5 * time.Second):
		t.Fatal("the watch's events were not taken as they arrived: the sender is still blocked")
	}
	// The last event may be between the channel and the view for a moment.
	var seen int
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		pods, err := v.livePods(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if seen = len(pods); seen == n {
			return
		}
	}
	t.Errorf("after %d events the view sees %d pods", n, seen)
}
