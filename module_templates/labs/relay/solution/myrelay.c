// SPDX-License-Identifier: GPL-2.0
/*
 * myrelay: a relay channel whose per-CPU buffers are debugfs files, the
 * transport SystemTap uses to stream data from the kernel to user space.
 *
 *   /sys/kernel/debug/myrelay/cpu0     the relay buffer of CPU 0 (read it)
 *   /sys/kernel/debug/myrelay/emit     write N: the module writes N records
 *   /sys/kernel/debug/myrelay/dropped  records lost because the buffer was full
 *   /sys/kernel/debug/myrelay/flush    write anything: relay_flush()
 *
 * A record is RECORD_LEN bytes of text: "record 00000001\n", numbered from 1.
 */

#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/relay.h>

#define SUBBUF_SIZE	4096	/* bytes per sub-buffer */
#define N_SUBBUFS	8	/* sub-buffers per CPU: 2048 records in all */
#define RECORD_LEN	16	/* strlen("record 00000001\n") */
#define MAX_EMIT	100000	/* records per write to "emit" */

static struct dentry *myrelay_dir;
static struct rchan *myrelay_chan;
static DEFINE_MUTEX(myrelay_lock);	/* one writer of records at a time */
static u32 myrelay_seq;			/* the last record's number */
/* TODO 3: a counter of the records lost because the buffer was full */
static u32 myrelay_dropped;
/* END TODO 3 */

/*
 * Called by relay_open() for each per-CPU buffer ("cpu0", "cpu1", ...):
 * the file the reader opens. relay_file_operations does the reading.
 */
static struct dentry *myrelay_create_buf_file(const char *filename,
					      struct dentry *parent,
					      umode_t mode,
					      struct rchan_buf *buf,
					      int *is_global)
{
	struct dentry *dentry = NULL;

	/* TODO 1: create the buffer file: relay_file_operations, buf as data */
	dentry = debugfs_create_file(filename, mode, parent, buf,
				     &relay_file_operations);
	/* END TODO 1 */
	/* relay wants NULL on failure; debugfs returns an ERR_PTR */
	return IS_ERR(dentry) ? NULL : dentry;
}

/* Called by relay_close() for each buffer file. */
static int myrelay_remove_buf_file(struct dentry *dentry)
{
	/* TODO 1: remove the buffer file */
	debugfs_remove(dentry);
	/* END TODO 1 */
	return 0;
}

/*
 * Called when a record does not fit in the current sub-buffer: may relay
 * move on to the next one? Refusing (0) drops the record instead of
 * overwriting sub-buffers the reader has not consumed yet. (Without this
 * callback relay's default refuses too, but counts nothing.)
 */
/* TODO 3: myrelay_subbuf_start: if relay_buf_full(buf), count a drop and refuse */
static int myrelay_subbuf_start(struct rchan_buf *buf, void *subbuf,
				void *prev_subbuf, size_t prev_padding)
{
	if (relay_buf_full(buf)) {
		myrelay_dropped++;
		return 0;
	}
	return 1;
}

/* END TODO 3 */

static const struct rchan_callbacks myrelay_callbacks = {
	/* TODO 3: relay calls our subbuf_start */
	.subbuf_start = myrelay_subbuf_start,
	/* END TODO 3 */
	.create_buf_file = myrelay_create_buf_file,
	.remove_buf_file = myrelay_remove_buf_file,
};

static ssize_t emit_write(struct file *file, const char __user *ubuf,
			  size_t count, loff_t *ppos)
{
	unsigned int n;
	int ret;

	ret = kstrtouint_from_user(ubuf, count, 0, &n);
	if (ret)
		return ret;
	if (n > MAX_EMIT)
		return -EINVAL;

	mutex_lock(&myrelay_lock);
	if (!myrelay_chan) {
		mutex_unlock(&myrelay_lock);
		return -ENODEV;
	}
	/* TODO 2: write n records with relay_write, numbered on from myrelay_seq */
	while (n--) {
		char rec[32];

		myrelay_seq++;
		scnprintf(rec, sizeof(rec), "record %08u\n", myrelay_seq % 100000000);
		relay_write(myrelay_chan, rec, RECORD_LEN);
	}
	/* skel: (void)myrelay_seq; */
	/* END TODO 2 */
	mutex_unlock(&myrelay_lock);
	return count;
}

static const struct file_operations emit_fops = {
	.owner = THIS_MODULE,
	.write = emit_write,
	.llseek = noop_llseek,
};

static ssize_t flush_write(struct file *file, const char __user *ubuf,
			   size_t count, loff_t *ppos)
{
	mutex_lock(&myrelay_lock);
	/* TODO 4: hand the current sub-buffer to the reader now (relay_flush) */
	relay_flush(myrelay_chan);
	/* END TODO 4 */
	mutex_unlock(&myrelay_lock);
	return count;
}

static const struct file_operations flush_fops = {
	.owner = THIS_MODULE,
	.write = flush_write,
	.llseek = noop_llseek,
};

static int __init myrelay_init(void)
{
	myrelay_dir = debugfs_create_dir("myrelay", NULL);
	if (IS_ERR(myrelay_dir))
		return PTR_ERR(myrelay_dir);

	/* TODO 1: open the channel "cpu" in myrelay_dir with our callbacks */
	myrelay_chan = relay_open("cpu", myrelay_dir, SUBBUF_SIZE, N_SUBBUFS,
				  &myrelay_callbacks, NULL);
	if (!myrelay_chan) {
		debugfs_remove_recursive(myrelay_dir);
		return -ENOMEM;
	}
	/* skel: (void)myrelay_callbacks; */
	/* END TODO 1 */

	debugfs_create_file("emit", 0200, myrelay_dir, NULL, &emit_fops);
	/* TODO 3: the read-only file "dropped" shows the counter */
	debugfs_create_u32("dropped", 0444, myrelay_dir, &myrelay_dropped);
	/* END TODO 3 */
	/* TODO 4: the write-only file "flush" */
	debugfs_create_file("flush", 0200, myrelay_dir, NULL, &flush_fops);
	/* skel: (void)flush_fops; */
	/* END TODO 4 */
	return 0;
}

static void __exit myrelay_exit(void)
{
	mutex_lock(&myrelay_lock);
	/* TODO 1: close the channel: relay_close() calls remove_buf_file for each buffer */
	relay_close(myrelay_chan);
	/* END TODO 1 */
	myrelay_chan = NULL;
	mutex_unlock(&myrelay_lock);
	debugfs_remove_recursive(myrelay_dir);
}

module_init(myrelay_init);
module_exit(myrelay_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("A relay channel with its buffers in debugfs");
