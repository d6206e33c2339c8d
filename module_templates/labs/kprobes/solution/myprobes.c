// SPDX-License-Identifier: GPL-2.0
/*
 * myprobes: a kprobe and a kretprobe on one kernel function, the mechanism
 * SystemTap's kernel.function() probes are built on.
 *
 *   /sys/kernel/debug/myprobes/hits      calls seen by the kprobe
 *   /sys/kernel/debug/myprobes/ret_hits  returns seen by the kretprobe
 *   /sys/kernel/debug/myprobes/last_ret  the value the last call returned
 *
 * The function is the module parameter "symbol", by default the getppid()
 * system call (__x64_sys_getppid): busybox's sh calls getppid() once as it
 * starts (for $PPID), and nothing else in the lab VM calls it.
 */

#include <linux/atomic.h>
#include <linux/debugfs.h>
#include <linux/kernel.h>
#include <linux/kprobes.h>
#include <linux/module.h>
#include <linux/ptrace.h>

static char *symbol = "__x64_sys_getppid";
module_param(symbol, charp, 0444);
MODULE_PARM_DESC(symbol, "the kernel function to probe");

static struct dentry *myprobes_dir;
static atomic_t hits;
static atomic_t ret_hits;
static atomic64_t last_ret;

/* Runs just before the probed instruction: the first of the function. */
static int myprobes_pre(struct kprobe *p, struct pt_regs *regs)
{
	/* TODO 1: count the call */
	atomic_inc(&hits);
	/* skel: (void)hits; */
	/* END TODO 1 */
	return 0;
}

static struct kprobe myprobes_kp = {
	.pre_handler = myprobes_pre,
};

/* Runs when the probed function returns, with its registers. */
static int myprobes_ret(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	/* TODO 2: count the return and keep the return value (regs_return_value) */
	atomic64_set(&last_ret, (long)regs_return_value(regs));
	atomic_inc(&ret_hits);
	/* skel: (void)ret_hits; */
	/* END TODO 2 */
	return 0;
}

static struct kretprobe myprobes_krp = {
	.handler = myprobes_ret,
	.maxactive = 16,	/* calls that may be in flight at once */
};

static int last_ret_get(void *data, u64 *val)
{
	*val = atomic64_read(&last_ret);
	return 0;
}
DEFINE_DEBUGFS_ATTRIBUTE(last_ret_fops, last_ret_get, NULL, "%lld\n");

static int __init myprobes_init(void)
{
	int ret = 0;

	/* TODO 3: probe the function named by the parameter symbol */
	myprobes_kp.symbol_name = symbol;
	myprobes_krp.kp.symbol_name = symbol;
	/* skel: myprobes_kp.symbol_name = "__x64_sys_getppid"; */
	/* skel: myprobes_krp.kp.symbol_name = "__x64_sys_getppid"; */
	/* END TODO 3 */

	/* TODO 1: register the kprobe */
	ret = register_kprobe(&myprobes_kp);
	if (ret) {
		pr_err("myprobes: register_kprobe(%s): %d\n", symbol, ret);
		return ret;
	}
	/* END TODO 1 */
	/* TODO 2: register the kretprobe (undo the kprobe if it fails) */
	ret = register_kretprobe(&myprobes_krp);
	if (ret) {
		pr_err("myprobes: register_kretprobe(%s): %d\n", symbol, ret);
		unregister_kprobe(&myprobes_kp);
		return ret;
	}
	/* END TODO 2 */

	myprobes_dir = debugfs_create_dir("myprobes", NULL);
	/* TODO 1: the read-only file hits */
	debugfs_create_atomic_t("hits", 0444, myprobes_dir, &hits);
	/* END TODO 1 */
	/* TODO 2: the read-only files ret_hits and last_ret */
	debugfs_create_atomic_t("ret_hits", 0444, myprobes_dir, &ret_hits);
	debugfs_create_file_unsafe("last_ret", 0444, myprobes_dir, NULL,
				   &last_ret_fops);
	/* skel: (void)last_ret_fops; */
	/* END TODO 2 */
	return ret;
}

static void __exit myprobes_exit(void)
{
	debugfs_remove_recursive(myprobes_dir);
	/* TODO 2: unregister the kretprobe (missed returns: nmissed) */
	unregister_kretprobe(&myprobes_krp);
	if (myprobes_krp.nmissed)
		pr_info("myprobes: %d returns missed\n", myprobes_krp.nmissed);
	/* END TODO 2 */
	/* TODO 1: unregister the kprobe */
	unregister_kprobe(&myprobes_kp);
	/* END TODO 1 */
}

module_init(myprobes_init);
module_exit(myprobes_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("A kprobe and a kretprobe with their counts in debugfs");
