// SPDX-License-Identifier: GPL-2.0
/*
 * knobs.c - a driver's debugging knobs in debugfs, a parameter and a /proc file.
 */
#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/module.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>

static int debug_value;
module_param(debug_value, int, 0644);
MODULE_PARM_DESC(debug_value, "initial value of debugfs knobs/level (0: leave it at 3)");

static struct dentry *knobs_dir;
static struct proc_dir_entry *knobs_proc;
static u32 level = 3;
static bool enabled = true;
static u32 ctrl = 0x1;
static u64 threshold = 10;
static unsigned long reads;

static ssize_t name_read(struct file *file, char __user *buf, size_t count, loff_t *ppos)
{
	static const char name[] = "knobs\n";

	reads++;
	return simple_read_from_buffer(buf, count, ppos, name, sizeof(name) - 1);
}

static const struct file_operations name_fops = {
	.owner = THIS_MODULE,
	.read = name_read,
	.llseek = default_llseek,
};

static int stats_show(struct seq_file *m, void *v)
{
	seq_printf(m, "level: %u\n", level);
	seq_printf(m, "name reads: %lu\n", reads);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(stats);

static int threshold_get(void *data, u64 *val)
{
	*val = threshold;
	return 0;
}

static int threshold_set(void *data, u64 val)
{
	if (val > 1000)
		return -EINVAL;
	threshold = val;
	return 0;
}
DEFINE_DEBUGFS_ATTRIBUTE(threshold_fops, threshold_get, threshold_set, "%llu\n");

static int knobs_proc_show(struct seq_file *m, void *v)
{
	seq_puts(m, "knobs ok\n");
	return 0;
}

static int __init knobs_init(void)
{
	struct dentry *regs;

	if (debug_value)
		level = debug_value;
	knobs_dir = debugfs_create_dir("knobs", NULL);
	debugfs_create_u32("level", 0644, knobs_dir, &level);
	debugfs_create_bool("enabled", 0644, knobs_dir, &enabled);
	debugfs_create_file("name", 0444, knobs_dir, NULL, &name_fops);
	debugfs_create_file("stats", 0444, knobs_dir, NULL, &stats_fops);
	debugfs_create_file_unsafe("threshold", 0600, knobs_dir, NULL, &threshold_fops);
	regs = debugfs_create_dir("regs", knobs_dir);
	debugfs_create_x32("ctrl", 0644, regs, &ctrl);
	knobs_proc = proc_create_single("knobs", 0444, NULL, knobs_proc_show);
	return 0;
}

static void __exit knobs_exit(void)
{
	proc_remove(knobs_proc);
	debugfs_remove_recursive(knobs_dir);
}

module_init(knobs_init);
module_exit(knobs_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("A driver's debugging knobs");
