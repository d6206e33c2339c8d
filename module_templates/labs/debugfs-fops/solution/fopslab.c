// SPDX-License-Identifier: GPL-2.0
/*
 * fopslab: debugfs files with their own file_operations.
 *
 * /sys/kernel/debug/fopslab/
 *   buffer  64 bytes of storage: reads and writes at any offset, bounded
 *   stats   a seq_file: the length and how many writes were taken or refused
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/err.h>
#include <linux/fs.h>
#include <linux/init.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/types.h>
#include <linux/uaccess.h>

#define BUF_SIZE 64

static struct dentry *fopslab_root;

static DEFINE_MUTEX(buf_lock); /* protects buf, buf_len and the counters */
static char buf[BUF_SIZE] = "fops lab\n";
static size_t buf_len = 9;
static unsigned long writes_taken;
static unsigned long writes_refused;

/*
 * The "device": storing bytes is slow; it sleeps after each half, like
 * real hardware would. Call it with buf_lock held.
 */
static void device_store(size_t pos, const char *src, size_t count)
{
	size_t half = count / 2;

	memcpy(buf + pos, src, half);
	usleep_range(1000, 2000);
	memcpy(buf + pos + half, src + half, count - half);
	usleep_range(1000, 2000);
}

/**
 * buffer_read() - read buffer from *ppos: the bytes up to its length
 * @file: the open file
 * @ubuf: the user's buffer
 * @count: its size
 * @ppos: the file position
 *
 * Return: the number of bytes copied, 0 at the end, or a negative errno.
 */
static ssize_t buffer_read(struct file *file, char __user *ubuf, size_t count,
			   loff_t *ppos)
{
	/* TODO 2: snapshot buf and buf_len under buf_lock, then copy from *ppos */
	char snapshot[BUF_SIZE];
	size_t len;

	mutex_lock(&buf_lock);
	len = buf_len;
	memcpy(snapshot, buf, len);
	mutex_unlock(&buf_lock);

	return simple_read_from_buffer(ubuf, count, ppos, snapshot, len);
	/* skel: return -EINVAL; */
	/* END TODO 2 */
}

/**
 * buffer_write() - store bytes at *ppos; the content then ends after them
 * @file: the open file
 * @ubuf: the user's bytes
 * @count: how many
 * @ppos: the file position: at most the current length (no holes)
 *
 * Return: @count, or -EINVAL (a hole), -ENOSPC (past BUF_SIZE), -EFAULT.
 */
static ssize_t buffer_write(struct file *file, const char __user *ubuf,
			    size_t count, loff_t *ppos)
{
	/* TODO 3: bounds, then device_store() under buf_lock; count writes_taken/refused */
	loff_t pos = *ppos;
	ssize_t ret;
	char *kbuf;

	if (count == 0)
		return 0;
	kbuf = memdup_user(ubuf, min_t(size_t, count, BUF_SIZE));
	if (IS_ERR(kbuf))
		return PTR_ERR(kbuf);

	mutex_lock(&buf_lock);
	if (pos < 0 || pos > buf_len) {
		ret = -EINVAL;
	} else if (count > BUF_SIZE - pos) {
		ret = -ENOSPC;
	} else {
		device_store(pos, kbuf, count);
		buf_len = pos + count;
		ret = count;
	}
	if (ret < 0)
		writes_refused++;
	else
		writes_taken++;
	mutex_unlock(&buf_lock);

	kfree(kbuf);
	if (ret > 0)
		*ppos = pos + ret;
	return ret;
	/* skel: return -EINVAL; */
	/* END TODO 3 */
}

static const struct file_operations buffer_fops = {
	.owner = THIS_MODULE,
	.read = buffer_read,
	.write = buffer_write,
	.llseek = default_llseek,
};

static int stats_show(struct seq_file *m, void *unused)
{
	/* TODO 4: print "length: N", "writes: N" and "refused: N", one per line */
	mutex_lock(&buf_lock);
	seq_printf(m, "length: %zu\n", buf_len);
	seq_printf(m, "writes: %lu\n", writes_taken);
	seq_printf(m, "refused: %lu\n", writes_refused);
	mutex_unlock(&buf_lock);
	/* END TODO 4 */
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(stats);

static int __init fopslab_init(void)
{
	/* TODO 1: the directory "fopslab", "buffer" (0644) and "stats" (0444) */
	fopslab_root = debugfs_create_dir("fopslab", NULL);
	debugfs_create_file("buffer", 0644, fopslab_root, NULL, &buffer_fops);
	debugfs_create_file("stats", 0444, fopslab_root, NULL, &stats_fops);
	/* END TODO 1 */
	return 0;
}

static void __exit fopslab_exit(void)
{
	/* TODO 1: remove the tree */
	debugfs_remove_recursive(fopslab_root);
	/* END TODO 1 */
}

module_init(fopslab_init);
module_exit(fopslab_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("dbgscaffold labs");
MODULE_DESCRIPTION("debugfs file_operations: offsets, bounds, locking and a seq_file");
