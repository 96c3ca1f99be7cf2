"""What the evolution search prints while it runs: one progress bar per population, one summary line
per generation (printed once the bar of that population is complete, so the two never interleave)."""
import sys

from mmengine.dist import is_main_process
from mmengine.logging import print_log
from mmengine.utils import ProgressBar

from .search_report import values_text


class SearchProgress:
    """Progress bar and generation summaries of an :class:`~mmsparse.sparsity.evolution.EvolutionSearch`.

    Args:
        search (EvolutionSearch): the search being run.
        score_key (str): the metric name, for the summaries.
    """

    def __init__(self, search, score_key):
        self.search = search
        self.score_key = score_key
        self._bar = None
        self._pending_log = None  # the generation summary, logged once its progress bar is complete

    def after_candidate(self, record):
        """Advance the bar when ``record`` joined the population; print a pending summary."""
        if not is_main_process():
            return
        search = self.search
        if record['joined']:  # one progress bar per population, advanced by each member that joins
            completed = record['generation'] != search.generation  # this member filled it
            if self._bar is None:
                size = search.population_size
                joined_before = (size if completed else len(search.population)) - 1
                self._bar = ProgressBar(size)
                for _ in range(joined_before):  # only after a resume
                    self._bar.update()
            self._bar.update()
            if completed:
                self._bar = None
                sys.stdout.write('\n')  # end the progress bar's line before the log line
        if self._pending_log is not None:
            print_log(self._pending_log, logger='current')
            self._pending_log = None

    def after_generation(self, generation, members, parents):
        """Prepare the summary of the population that just filled."""
        search, best = self.search, self.search.best
        scores = [m['fitness'] for m in members]
        self._pending_log = (f'generation {generation + 1}/{search.max_generations}: best {self.score_key} '
                             f'{best["fitness"]:.4f} at {values_text(best["constraints"])} '
                             f'(candidate {best["index"]}); population mean {sum(scores) / len(scores):.4f}, '
                             f'parents >= {parents[-1]["fitness"]:.4f}; candidates {search.num_candidates}/'
                             f'{search.max_candidates}, fitness evaluations {search.num_evaluations}')
