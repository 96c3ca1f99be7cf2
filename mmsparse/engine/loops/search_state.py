"""The files that let a killed evolution search resume: ``search_state.json`` and its log.

The state is JSON (plain lists, dicts and numbers, with a version field), never a pickle: a work dir
someone hands you must not run code when it is resumed. An old ``search_state.pkl`` is refused with an
explanation and left untouched.
"""
import json
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.logging import print_log

from .search_report import atomic_write

# 2: JSON (search_state.json); 1 was a pickle (search_state.pkl), which is refused on resume
STATE_VERSION = 2


class SearchStateFiles:
    """``search_state.json`` (everything the search's future depends on) and ``search_history.jsonl``
    (one line per candidate) in ``work_dir``; only the main process writes them.

    Args:
        work_dir (str): the run's work dir.
    """

    def __init__(self, work_dir):
        self.work_dir = work_dir

    @property
    def state_path(self):
        return osp.join(self.work_dir, 'search_state.json')

    @property
    def history_path(self):
        return osp.join(self.work_dir, 'search_history.jsonl')

    @property
    def legacy_path(self):
        return osp.join(self.work_dir, 'search_state.pkl')

    def save(self, search, references):
        """Write ``search.state_dict()`` and the reference evaluations, atomically."""
        if is_main_process():
            state = dict(version=STATE_VERSION, search=search.state_dict(), references=references)
            atomic_write(self.state_path, json.dumps(state), mode='w')

    def load(self, search):
        """Restore ``search`` from the state file; returns the saved reference evaluations.

        Every rank loads (resuming on rank 0 alone would let the ranks disagree).
        """
        try:
            with open(self.state_path) as f:
                state = json.load(f)
        except ValueError as e:
            raise ValueError(f'{self.state_path} is not a valid search state ({e}); it was left '
                             'as it is: move it away to start a new search') from e
        if not isinstance(state, dict) or state.get('version') != STATE_VERSION:
            version = state.get('version') if isinstance(state, dict) else None
            raise ValueError(f'{self.state_path}: search state version {version!r}, this mmsparse '
                             f'reads version {STATE_VERSION}')
        search.load_state_dict(state['search'])
        return state['references']

    def start(self, search, resume):
        """Resume ``search`` when asked and a state exists, then make the log equal the state's
        history (also after a kill between the two writes). Returns the reference evaluations
        (empty for a new search)."""
        if resume and not osp.isfile(self.state_path) and osp.isfile(self.legacy_path):
            raise ValueError(
                f'{self.legacy_path} is a search state of an older mmsparse, saved as a pickle. Loading '
                'a pickle can run arbitrary code, so mmsparse reads only search_state.json now. Start '
                'a new search in another --work-dir (the old search_history.jsonl there lists every '
                'candidate it evaluated); the old file is left untouched.')
        references = {}
        if resume and osp.isfile(self.state_path):
            references = self.load(search)
            print_log(
                f'resumed the search from {self.state_path} at candidate '
                f'{search.num_candidates}, generation {search.generation}',
                logger='current')
        elif resume:
            print_log(f'--resume: no {self.state_path} yet, starting a new search', logger='current')
        if is_main_process():
            atomic_write(self.history_path, ''.join(json.dumps(r) + '\n' for r in search.history))
        return references

    def append(self, record):
        """Log one candidate's record (after :meth:`save`: a resume rewrites the log from the state)."""
        if is_main_process():
            with open(self.history_path, 'a') as f:
                f.write(json.dumps(record) + '\n')
