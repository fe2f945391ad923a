//! A sudoku solver: bitmask backtracking that always makes the most
//! constrained move first. Pure, no dependencies, no allocation.
//!
//! A grid is 81 cells in row order, 0 for empty and 1..=9 for a digit.
//! Each row, column and box keeps a 9-bit mask of the digits it holds, so a
//! cell's candidates are one OR and one NOT. At every step the search takes
//! a forced move if there is one (a cell with one candidate, or a digit with
//! one place left in a row, column or box), else branches on the cell with
//! the fewest candidates; that keeps even puzzles built against
//! backtracking to a few hundred microseconds.
#![allow(dead_code)]

/// Cells in a grid.
pub const CELLS: usize = 81;

/// 81 cells, row by row: 0 = empty, 1..=9 = digit.
pub type Grid = [u8; CELLS];

const ALL: u16 = 0x1FF;

const fn box_of(cell: usize) -> usize {
    (cell / 27) * 3 + (cell % 9) / 3
}

/// The cells of the 27 units: rows 0-8, columns 9-17, boxes 18-26.
const UNITS: [[u8; 9]; 27] = {
    let mut units = [[0u8; 9]; 27];
    let mut cell = 0;
    let mut filled = [0usize; 27];
    while cell < CELLS {
        let ids = [cell / 9, 9 + cell % 9, 18 + box_of(cell)];
        let mut k = 0;
        while k < 3 {
            units[ids[k]][filled[ids[k]]] = cell as u8;
            filled[ids[k]] += 1;
            k += 1;
        }
        cell += 1;
    }
    units
};

/// Parses 81 characters: `1`-`9` are digits, `0` and `.` are empty cells.
/// `None` for any other character or length.
pub fn parse(text: &[u8]) -> Option<Grid> {
    if text.len() != CELLS {
        return None;
    }
    let mut grid = [0u8; CELLS];
    for (cell, &c) in grid.iter_mut().zip(text) {
        *cell = match c {
            b'1'..=b'9' => c - b'0',
            b'0' | b'.' => 0,
            _ => return None,
        };
    }
    Some(grid)
}

/// The grid as 81 ASCII digits (`0` for empty cells).
pub fn format(grid: &Grid) -> [u8; CELLS] {
    grid.map(|d| b'0' + d)
}

/// Solves `puzzle`; `None` when it has no solution (conflicting givens
/// included). When several solutions exist, returns the first found.
pub fn solve(puzzle: &Grid) -> Option<Grid> {
    let mut s = Search {
        grid: *puzzle,
        rows: [0; 9],
        cols: [0; 9],
        boxes: [0; 9],
        empty: [0; CELLS],
        n_empty: 0,
    };
    for (cell, &d) in puzzle.iter().enumerate() {
        if d == 0 {
            s.empty[s.n_empty] = cell as u8;
            s.n_empty += 1;
        } else if d > 9 || s.candidates(cell) & bit(d) == 0 {
            return None;
        } else {
            s.set(cell, d);
        }
    }
    s.search().then_some(s.grid)
}

/// True if `solution` is a complete valid grid that keeps every given of `puzzle`.
pub fn is_solution_of(puzzle: &Grid, solution: &Grid) -> bool {
    let keeps = puzzle.iter().zip(solution).all(|(&p, &s)| p == 0 || p == s);
    let (mut rows, mut cols, mut boxes) = ([0u16; 9], [0u16; 9], [0u16; 9]);
    for (cell, &d) in solution.iter().enumerate() {
        if !(1..=9).contains(&d) {
            return false;
        }
        rows[cell / 9] |= bit(d);
        cols[cell % 9] |= bit(d);
        boxes[box_of(cell)] |= bit(d);
    }
    keeps && rows.iter().chain(&cols).chain(&boxes).all(|&m| m == ALL)
}

fn bit(d: u8) -> u16 {
    1 << (d - 1)
}

struct Search {
    grid: Grid,
    rows: [u16; 9],
    cols: [u16; 9],
    boxes: [u16; 9],
    /// Empty cells live in `empty[..n_empty]`; order does not matter.
    empty: [u8; CELLS],
    n_empty: usize,
}

impl Search {
    fn candidates(&self, cell: usize) -> u16 {
        !(self.rows[cell / 9] | self.cols[cell % 9] | self.boxes[box_of(cell)]) & ALL
    }

    fn set(&mut self, cell: usize, d: u8) {
        self.grid[cell] = d;
        self.rows[cell / 9] |= bit(d);
        self.cols[cell % 9] |= bit(d);
        self.boxes[box_of(cell)] |= bit(d);
    }

    fn clear(&mut self, cell: usize, d: u8) {
        self.grid[cell] = 0;
        self.rows[cell / 9] &= !bit(d);
        self.cols[cell % 9] &= !bit(d);
        self.boxes[box_of(cell)] &= !bit(d);
    }

    /// A digit with exactly one possible cell in some unit, as (cell,
    /// digit); `Err` when a missing digit has no possible cell at all.
    fn hidden_single(&self) -> Result<Option<(usize, u8)>, ()> {
        for (u, cells) in UNITS.iter().enumerate() {
            let held = match u {
                0..=8 => self.rows[u],
                9..=17 => self.cols[u - 9],
                _ => self.boxes[u - 18],
            };
            let need = !held & ALL;
            if need == 0 {
                continue;
            }
            let (mut once, mut twice) = (0u16, 0u16);
            for &c in cells {
                if self.grid[c as usize] == 0 {
                    let m = self.candidates(c as usize);
                    twice |= once & m;
                    once |= m;
                }
            }
            if once & need != need {
                return Err(());
            }
            let single = once & !twice & need;
            if single != 0 {
                let d = single.trailing_zeros() as u8 + 1;
                for &c in cells {
                    let c = c as usize;
                    if self.grid[c] == 0 && self.candidates(c) & bit(d) != 0 {
                        return Ok(Some((c, d)));
                    }
                }
            }
        }
        Ok(None)
    }

    fn search(&mut self) -> bool {
        if self.n_empty == 0 {
            return true;
        }
        // The most constrained cell: fewest candidates, stop early at 0 or 1.
        let (mut best, mut best_mask, mut best_count) = (0, 0, u32::MAX);
        for i in 0..self.n_empty {
            let mask = self.candidates(self.empty[i] as usize);
            let count = mask.count_ones();
            if count < best_count {
                (best, best_mask, best_count) = (i, mask, count);
                if count <= 1 {
                    break;
                }
            }
        }
        if best_count == 0 {
            return false;
        }
        if best_count > 1 {
            match self.hidden_single() {
                Err(()) => return false,
                Ok(Some((cell, d))) => {
                    best = self.empty[..self.n_empty]
                        .iter()
                        .position(|&c| c as usize == cell)
                        .unwrap_or(best);
                    best_mask = bit(d);
                }
                Ok(None) => {}
            }
        }
        let last = self.n_empty - 1;
        self.empty.swap(best, last);
        self.n_empty = last;
        let cell = self.empty[last] as usize;
        let mut mask = best_mask;
        while mask != 0 {
            let d = mask.trailing_zeros() as u8 + 1;
            mask &= mask - 1;
            self.set(cell, d);
            if self.search() {
                return true;
            }
            self.clear(cell, d);
        }
        self.n_empty = last + 1;
        false
    }
}
