// SPDX-License-Identifier: GPL-2.0
/*
 * mytrace: a module made to be watched with ftrace.
 *
 *   /sys/kernel/debug/mytrace/run   write N: mytrace_step() runs N times,
 *                                   then mytrace_work_fn() runs once on the
 *                                   system workqueue and the write waits for it
 *
 * What the checks look for in /sys/kernel/tracing/trace:
 *   function tracer, set_ftrace_filter=mytrace_step: N calls from run_write
 *   trace_printk: "mytrace: step I of N" from mytrace_step, I = 1..N
 *   events workqueue/workqueue_execute_start: function mytrace_work_fn
 *   events kmem/kmalloc and kmem/kfree: N * 64 bytes, freed by the work
 *   events sched/sched_switch: the kworker sleeps (state D) in the work
 */

#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/fs.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/workqueue.h>

#define MAX_STEPS 1000
#define BYTES_PER_STEP 64

static struct dentry *mytrace_dir;
static unsigned long mytrace_total;	/* steps run since load */
/* TODO 3: the work item mytrace_work (DECLARE_WORK) and the N it allocates for */
static unsigned int mytrace_work_steps;
static void mytrace_work_fn(struct work_struct *work);
static DECLARE_WORK(mytrace_work, mytrace_work_fn);
/* END TODO 3 */

/* TODO 1: make mytrace_step a function of its own for the tracer: never inlined, never cloned */
static noinline __noclone void mytrace_step(unsigned int i, unsigned int n)
/* skel: static void mytrace_step(unsigned int i, unsigned int n) */
/* END TODO 1 */
{
	mytrace_total++;
	/* TODO 2: trace_printk "mytrace: step I of N" (I from 1 to N) */
	trace_printk("mytrace: step %u of %u\n", i, n);
	/* END TODO 2 */
}

/* TODO 3: mytrace_work_fn: kmalloc N * BYTES_PER_STEP bytes, msleep(100), kfree */
static void mytrace_work_fn(struct work_struct *work)
{
	void *buf = kmalloc(mytrace_work_steps * BYTES_PER_STEP, GFP_KERNEL);

	msleep(100);
	kfree(buf);
}

/* END TODO 3 */

static ssize_t run_write(struct file *file, const char __user *ubuf,
			 size_t count, loff_t *ppos)
{
	unsigned int n, i;
	int ret;

	ret = kstrtouint_from_user(ubuf, count, 0, &n);
	if (ret)
		return ret;
	if (!n || n > MAX_STEPS)
		return -EINVAL;

	/* TODO 1: call mytrace_step(i, n) for i = 1 .. n */
	for (i = 1; i <= n; i++)
		mytrace_step(i, n);
	/* skel: (void)i; */
	/* skel: (void)mytrace_step; */
	/* END TODO 1 */
	/* TODO 3: queue the work on the system workqueue and wait until it ran */
	mytrace_work_steps = n;
	schedule_work(&mytrace_work);
	flush_work(&mytrace_work);
	/* END TODO 3 */
	return count;
}

static const struct file_operations run_fops = {
	.owner = THIS_MODULE,
	.write = run_write,
	.llseek = noop_llseek,
};

static int __init mytrace_init(void)
{
	mytrace_dir = debugfs_create_dir("mytrace", NULL);
	debugfs_create_file("run", 0200, mytrace_dir, NULL, &run_fops);
	debugfs_create_ulong("total", 0444, mytrace_dir, &mytrace_total);
	return 0;
}

static void __exit mytrace_exit(void)
{
	debugfs_remove_recursive(mytrace_dir);
	/* TODO 3: make sure the work is not pending or running any more */
	cancel_work_sync(&mytrace_work);
	/* END TODO 3 */
}

module_init(mytrace_init);
module_exit(mytrace_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("A module to watch with ftrace");
