package provider

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
)

// Workloads for the recycling tests, created before the binding so their
// pods start without credentials, as on a cluster adopting IRSA.

func podTemplate(app, sa string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
		Spec: corev1.PodSpec{
			ServiceAccountName: sa,
			Containers:         []corev1.Container{{Name: "app", Image: "app"}},
		},
	}
}

func (c *testCluster) createDeployment(name, sa string, replicas int32) {
	c.t.Helper()
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: podTemplate(name, sa),
		},
	}
	if _, err := c.client.AppsV1().Deployments(c.ns).Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
		c.t.Fatal(err)
	}
}

func (c *testCluster) createDaemonSet(name, sa string) {
	c.t.Helper()
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.ns},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: podTemplate(name, sa),
		},
	}
	if _, err := c.client.AppsV1().DaemonSets(c.ns).Create(context.Background(), ds, metav1.CreateOptions{}); err != nil {
		c.t.Fatal(err)
	}
}

func (c *testCluster) createBarePod(name, sa string) {
	c.t.Helper()
	tpl := podTemplate(name, sa)
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.ns, Labels: tpl.Labels}, Spec: tpl.Spec}
	if _, err := c.client.CoreV1().Pods(c.ns).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
		c.t.Fatal(err)
	}
}

// createPendingJob creates a Job whose pod cannot be scheduled, so it stays
// live (kwok would complete a scheduled Job pod at once).
func (c *testCluster) createPendingJob(name, sa string) {
	c.t.Helper()
	tpl := podTemplate(name, sa)
	tpl.Spec.RestartPolicy = corev1.RestartPolicyNever
	tpl.Spec.NodeSelector = map[string]string{"no-such-node": "true"}
	j := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.ns},
		Spec:       batchv1.JobSpec{Template: tpl},
	}
	if _, err := c.client.BatchV1().Jobs(c.ns).Create(context.Background(), j, metav1.CreateOptions{}); err != nil {
		c.t.Fatal(err)
	}
}

func (c *testCluster) createPDB(name, app string, minAvailable int32) {
	c.t.Helper()
	minAvailableValue := intstr.FromInt32(minAvailable)
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.ns}}
	pdb.Spec.MinAvailable = &minAvailableValue
	pdb.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}
	if _, err := c.client.PolicyV1().PodDisruptionBudgets(c.ns).Create(context.Background(), pdb, metav1.CreateOptions{}); err != nil {
		c.t.Fatal(err)
	}
}

// pods returns the live pods with label app=app, by name.
func (c *testCluster) pods(app string) map[string]corev1.Pod {
	c.t.Helper()
	list, err := c.client.CoreV1().Pods(c.ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		c.t.Fatal(err)
	}
	out := map[string]corev1.Pod{}
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			out[p.Name] = p
		}
	}
	return out
}

// waitPods waits until app has n live pods, all Running and Ready.
func (c *testCluster) waitPods(app string, n int) map[string]corev1.Pod {
	c.t.Helper()
	var pods map[string]corev1.Pod
	err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, 60*time.Second, true, func(context.Context) (bool, error) {
		pods = c.pods(app)
		if len(pods) != n {
			return false, nil
		}
		for _, p := range pods {
			if !isReady(p) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		c.t.Fatalf("%d Ready pods of app=%s: %v (have %d)", n, app, err, len(pods))
	}
	return pods
}

func isReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func uids(pods map[string]corev1.Pod) map[string]bool {
	out := map[string]bool{}
	for _, p := range pods {
		out[string(p.UID)] = true
	}
	return out
}

// checkReplaced asserts every live pod of app is new (no UID of before),
// there are n of them, and each carries role's credentials.
func (c *testCluster) checkReplaced(app string, before map[string]corev1.Pod, n int, role string) resource.TestCheckFunc {
	return c.checkReplacedBy(app, before, n, func(p *corev1.Pod) (bool, string) {
		return credentialedOracle(p, oracleWant{Role: role})
	})
}

// checkReplacedBy is checkReplaced with the oracle of a mechanism.
func (c *testCluster) checkReplacedBy(app string, before map[string]corev1.Pod, n int, credentialed func(*corev1.Pod) (bool, string)) resource.TestCheckFunc {
	return func(*terraform.State) error {
		old := uids(before)
		now := c.pods(app)
		if len(now) != n {
			return fmt.Errorf("app=%s has %d live pods, want %d", app, len(now), n)
		}
		for _, p := range now {
			if old[string(p.UID)] {
				return fmt.Errorf("pod %s of app=%s was not replaced", p.Name, app)
			}
			if ok, reason := credentialed(&p); !ok {
				return fmt.Errorf("pod %s of app=%s: %s", p.Name, app, reason)
			}
			if !isReady(p) {
				return fmt.Errorf("pod %s of app=%s is not Ready", p.Name, app)
			}
		}
		return nil
	}
}

// checkGone asserts none of the pods of before is still live.
func (c *testCluster) checkGone(app string, before map[string]corev1.Pod) resource.TestCheckFunc {
	return func(*terraform.State) error {
		now := uids(c.pods(app))
		for uid := range uids(before) {
			if now[uid] {
				return fmt.Errorf("a pod of app=%s is still there; it must have been deleted", app)
			}
		}
		return nil
	}
}

// checkUntouched asserts the pods of app are exactly the ones before.
func (c *testCluster) checkUntouched(app string, before map[string]corev1.Pod) resource.TestCheckFunc {
	return func(*terraform.State) error {
		now := uids(c.pods(app))
		old := uids(before)
		if len(now) != len(old) {
			return fmt.Errorf("app=%s has %d pods, had %d", app, len(now), len(old))
		}
		for uid := range old {
			if !now[uid] {
				return fmt.Errorf("a pod of app=%s was replaced; it must be left alone", app)
			}
		}
		return nil
	}
}

// checkStalePods asserts the state's stale_pods names exactly want.
func checkStalePods(want ...string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		rs, ok := s.RootModule().Resources[resourceAddr]
		if !ok {
			return fmt.Errorf("%s not in state", resourceAddr)
		}
		var got []string
		for i := 0; ; i++ {
			name, ok := rs.Primary.Attributes[fmt.Sprintf("stale_pods.%d.name", i)]
			if !ok {
				break
			}
			got = append(got, name)
		}
		sort.Strings(got)
		sort.Strings(want)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("stale_pods = %v, want %v (state: %v)", got, want, rs.Primary.Attributes)
		}
		return nil
	}
}

func onlyPod(pods map[string]corev1.Pod) string {
	for name := range pods {
		return name
	}
	return ""
}
